// Admin bearer tokens: stored as SHA-256 digests (tokens are 192 random bits, so a fast hash suffices), the
// first one created at first start and shown once, or one configured by the operator.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { AdminTokenRepository } from '../db/repositories.js';

export const TOKEN_FILE = 'admin-token';

const digestOf = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

export class AdminAuth {
  private readonly configured: Buffer | null;

  constructor(
    private readonly repo: AdminTokenRepository,
    configuredToken: string | null,
  ) {
    this.configured = configuredToken ? digestOf(configuredToken) : null;
  }

  /**
   * At first start (no token yet, none configured): creates one, writes it to <data>/admin-token (mode 0600,
   * for the local CLI) and returns it so that the caller shows it once. Otherwise returns null.
   */
  async ensureToken(dataDir: string): Promise<{ token: string; file: string } | null> {
    if (this.configured || (await this.repo.count()) > 0) return null;
    const token = `fct_${randomBytes(24).toString('base64url')}`;
    const file = join(dataDir, TOKEN_FILE);
    await fs.writeFile(file, `${token}\n`, { mode: 0o600 });
    await fs.chmod(file, 0o600);
    await this.repo.add('initial', digestOf(token).toString('hex'), new Date().toISOString());
    return { token, file };
  }

  async verify(token: string): Promise<boolean> {
    const digest = digestOf(token);
    if (this.configured) return timingSafeEqual(digest, this.configured);
    return this.repo.use(digest.toString('hex'), new Date().toISOString());
  }
}
