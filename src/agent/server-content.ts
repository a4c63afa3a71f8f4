// Content from the site server, for runs the server deploys: the `fleetcast fetch` client (multicast when the
// server offers a session, unicast when the package and the deployment allow it, resumable, verified) as a
// ContentProvider. Content already complete in the work folder (a step that runs again after a restart or a
// crash) is verified and reused instead of fetched again.
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiClient, ApiError } from '../client/api.js';
import { fetchImage, type FetchResult } from '../client/fetch.js';
import type { ContentAccess } from '../db/deployment-repositories.js';
import type { ImageFormat } from '../content/formats.js';
import { formatImageReference, sha256File, type ContentProvider, type FetchedContent, type FetchOptions, type ImageReference } from './content.js';
import { StepFailure, type FailureReason } from './report.js';

export interface ServerContentOptions {
  server: string;
  clientSecret?: string;
  access: ContentAccess;
  /** Interface for multicast (e.g. eth0, or lo for tests). */
  iface?: string;
  clientName: string;
  mac?: string;
  uuid?: string;
  /** While the server cannot be reached, keep trying this long before the step fails (default 5 min). */
  unreachableRetryMs?: number;
}

interface ImageFacts {
  name: string;
  version: string | null;
  format: ImageFormat;
  size: number;
  digest: string;
  uncompressedSize: number | null;
}

const FAILURES: Record<NonNullable<FetchResult['failure']>, FailureReason> = {
  refused: 'content-unavailable',
  unreachable: 'content-unavailable',
  timeout: 'content-unavailable',
  multicast: 'content-unavailable',
  integrity: 'hash-mismatch',
  io: 'io',
  interrupted: 'interrupted',
};

export class ServerContentProvider implements ContentProvider {
  private readonly api: ApiClient;

  constructor(private readonly o: ServerContentOptions) {
    this.api = new ApiClient({ server: o.server, clientSecret: o.clientSecret });
  }

  private async facts(ref: ImageReference, signal?: AbortSignal): Promise<ImageFacts> {
    const deadline = Date.now() + (this.o.unreachableRetryMs ?? 300_000);
    for (;;) {
      try {
        const facts = await this.api.request<ImageFacts>('GET', `/api/client/images/${encodeURIComponent(ref.name)}`, undefined, signal);
        if (ref.version !== null && facts.version !== String(ref.version)) {
          throw new StepFailure('content-not-found', `image ${formatImageReference(ref)} is not on the server (it has version ${facts.version ?? '(none)'} of ${ref.name})`);
        }
        return facts;
      } catch (err) {
        if (signal?.aborted) throw new StepFailure('interrupted', 'interrupted');
        if (err instanceof ApiError && err.status === 404) throw new StepFailure('content-not-found', `image ${formatImageReference(ref)}: ${err.message}`);
        if (err instanceof ApiError && err.status === 0 && Date.now() < deadline) {
          await sleep(5000, undefined, { signal }).catch(() => undefined);
          continue;
        }
        if (err instanceof ApiError) throw new StepFailure('content-unavailable', `image ${formatImageReference(ref)}: ${err.message}`);
        throw err;
      }
    }
  }

  async fetch(ref: ImageReference, destPath: string, opts: FetchOptions = {}): Promise<FetchedContent> {
    const facts = await this.facts(ref, opts.signal);
    const content: FetchedContent = { path: destPath, format: facts.format, size: facts.size, digest: facts.digest, ...(facts.uncompressedSize !== null ? { uncompressedSize: facts.uncompressedSize } : {}) };
    await fs.mkdir(dirname(destPath), { recursive: true });
    const have = await fs.stat(destPath).catch(() => null);
    if (have?.size === facts.size && (await sha256File(destPath, opts)) === facts.digest) return content;
    const deadline = Date.now() + (this.o.unreachableRetryMs ?? 300_000);
    for (;;) {
      const r = await fetchImage({
        server: this.o.server,
        image: ref.name,
        version: ref.version !== null ? String(ref.version) : undefined,
        output: destPath,
        iface: this.o.iface,
        clientName: this.o.clientName,
        mac: this.o.mac,
        uuid: this.o.uuid,
        clientSecret: this.o.clientSecret,
        access: this.o.access,
        signal: opts.signal,
        onProgress: opts.onProgress,
      });
      if (r.ok) {
        if (r.digest !== facts.digest) throw new StepFailure('hash-mismatch', `image ${formatImageReference(ref)} changed on the server while it was fetched (digest ${r.digest}, expected ${facts.digest}): run the step again`);
        return content;
      }
      // A server that is briefly away (restarting) must not fail a deployment: wait for it a while.
      if (r.failure === 'unreachable' && Date.now() < deadline) {
        await sleep(5000, undefined, { signal: opts.signal }).catch(() => undefined);
        continue;
      }
      throw new StepFailure(FAILURES[r.failure!], `image ${formatImageReference(ref)}: ${r.message}`, { attempts: r.attempts });
    }
  }
}
