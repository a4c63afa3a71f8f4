// Import jobs: content goes into the content store, then the image record into the database — all or nothing.
// Jobs run in the server (the single writer of the library) and report progress; the CLI polls them.
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { type ContentStore, type ImageFormat, type ImportResult } from '../content/index.js';
import { ConflictError, type PackageSettings, type Repositories } from '../db/repositories.js';
import type { ImportJob } from './api-types.js';
import { HttpError } from './context.js';

export type { ImportJob, ImportState } from './api-types.js';
import { sessionGeometry } from './session-manager.js';

export interface ImportRequest extends Partial<PackageSettings> {
  /** File on the server's file system. */
  path: string;
  name: string;
  version?: string | null;
  description?: string | null;
  format?: ImageFormat;
  /** Called when the job ends whatever the outcome (e.g. removes an uploaded spool file). */
  cleanup?: () => Promise<void>;
  /** Shown instead of the path (e.g. "upload of win11.wim"). */
  sourceLabel?: string;
}

/** Checks package settings combine sensibly (ConfigMgr greys out "multicast only" without "allow multicast"). */
export function checkPackageSettings(s: PackageSettings): void {
  if (s.multicastOnly && !s.allowMulticast) {
    const message = 'a multicast-only package must allow multicast: drop --multicast-only or add --allow-multicast';
    throw new HttpError(400, message, [{ path: '/multicastOnly', message }]);
  }
}

const cancelled = () => Object.assign(new Error('import cancelled'), { code: 'interrupted' });

export class ImportJobs {
  /** Digests stored by running imports not yet recorded: a failing import must not remove them. */
  private readonly unrecorded = new Map<string, number>();
  private readonly jobs = new Map<string, { job: ImportJob; controller: AbortController; done: Promise<void> }>();

  constructor(
    private readonly store: ContentStore,
    private readonly repos: Repositories,
    private readonly geometries: { mtu: number },
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Starts an import; throws ConflictError at once when the name is taken or being imported. */
  async start(req: ImportRequest): Promise<ImportJob> {
    const settings: PackageSettings = {
      allowMulticast: req.allowMulticast ?? true,
      encryptMulticast: req.encryptMulticast ?? false,
      multicastOnly: req.multicastOnly ?? false,
    };
    try {
      checkPackageSettings(settings);
      if (await this.repos.images.byName(req.name)) {
        throw new ConflictError(`an image named "${req.name}" already exists: delete it first (fleetcast image delete ${req.name}) or choose another name`);
      }
      if ([...this.jobs.values()].some((j) => j.job.name === req.name && j.job.state === 'running')) {
        throw new ConflictError(`an image named "${req.name}" is being imported right now`);
      }
    } catch (err) {
      await req.cleanup?.();
      throw err;
    }
    const job: ImportJob = {
      id: randomUUID(),
      name: req.name,
      source: req.sourceLabel ?? req.path,
      state: 'running',
      stage: 'copying',
      doneBytes: 0,
      totalBytes: 0,
      startedAt: new Date().toISOString(),
      finishedAt: null,
      image: null,
      error: null,
    };
    const controller = new AbortController();
    const done = this.run(job, req, settings, controller.signal).finally(() => req.cleanup?.());
    this.jobs.set(job.id, { job, controller, done });
    return job;
  }

  private async run(job: ImportJob, req: ImportRequest, settings: PackageSettings, signal: AbortSignal): Promise<void> {
    let result: ImportResult | null = null;
    try {
      this.log.info({ import: job.id, name: req.name, source: job.source }, 'import started');
      result = await this.store.import(req.path, {
        format: req.format,
        signal,
        onProgress: (doneBytes, totalBytes) => {
          job.doneBytes = doneBytes;
          job.totalBytes = totalBytes;
        },
      });
      this.unrecorded.set(result.digest, (this.unrecorded.get(result.digest) ?? 0) + 1);
      // The block hashes every session of this image needs, for the configured MTU, with and without
      // encryption: computed now, so that the first client does not wait for them.
      job.stage = 'hashing blocks';
      for (const encrypted of [false, true]) {
        if (signal.aborted) throw cancelled();
        await this.store.blockHashes(result.digest, sessionGeometry(this.geometries.mtu, 4, encrypted).blockBytes, { signal });
      }
      if (signal.aborted) throw cancelled();
      job.stage = 'recording';
      const details: Record<string, unknown> = { importedAt: result.importedAt };
      if (result.iso) details.iso = result.iso;
      if (result.wim) details.wim = result.wim;
      job.image = await this.repos.images.create({
        name: req.name,
        version: req.version ?? null,
        description: req.description ?? null,
        digest: result.digest,
        format: result.format,
        size: result.size,
        uncompressedSize: result.uncompressedSize ?? null,
        details,
        ...settings,
      });
      this.release(result.digest);
      job.stage = 'done';
      job.state = 'completed';
      job.doneBytes = job.totalBytes = result.size;
      this.log.info({ import: job.id, name: req.name, digest: result.digest, deduplicated: result.deduplicated }, 'import completed');
    } catch (err) {
      const e = err as Error & { code?: string };
      job.state = signal.aborted || e.code === 'interrupted' ? 'cancelled' : 'failed';
      job.error = { code: err instanceof ConflictError ? 'conflict' : (e.code ?? 'error'), message: e.message };
      // Content stored by this import but recorded by no image goes again: the library stays as it was.
      if (result) this.release(result.digest);
      if (result && !this.unrecorded.has(result.digest) && (await this.repos.images.countByDigest(result.digest)) === 0) {
        await this.store.remove(result.digest).catch((removeErr: Error) => this.log.error({ err: removeErr }, 'could not remove the content of a failed import'));
      }
      this.log.warn({ import: job.id, name: req.name, state: job.state, error: e.message }, 'import did not complete');
    } finally {
      job.finishedAt = new Date().toISOString();
    }
  }

  private release(digest: string): void {
    const n = (this.unrecorded.get(digest) ?? 0) - 1;
    if (n > 0) this.unrecorded.set(digest, n);
    else this.unrecorded.delete(digest);
  }

  get(id: string): ImportJob | undefined {
    return this.jobs.get(id)?.job;
  }

  list(): ImportJob[] {
    return [...this.jobs.values()].map((j) => j.job);
  }

  /** Cancels a running import and waits until it has cleaned up. */
  async cancel(id: string): Promise<ImportJob | undefined> {
    const j = this.jobs.get(id);
    if (!j) return undefined;
    j.controller.abort();
    await j.done;
    return j.job;
  }

  async close(): Promise<void> {
    await Promise.all([...this.jobs.keys()].map((id) => this.cancel(id)));
  }
}
