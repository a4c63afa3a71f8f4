// Status messages on their way to the server: every message is appended to a file first (so a crash, a
// restart or an unreachable server loses nothing), then sent in batches; the server stores each message id
// once, so a batch sent again after a lost answer is harmless.
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Reporter, StatusMessage } from './report.js';

export type QueuedStatus = StatusMessage & { id: string };

/** Delivers a batch; throws when it could not (the batch stays queued). */
export type SendBatch = (messages: QueuedStatus[]) => Promise<void>;

/** A refusal that sending again cannot change (the server finds the message itself invalid). */
export class RejectedBatch extends Error {}

/** Longest message text sent; longer ones (a command's whole output) are cut, the log file keeps them. */
const MAX_TEXT = 60_000;

const BATCH = 500;
const MAX_BACKOFF_MS = 30_000;

export class Outbox implements Reporter {
  private flushing: Promise<void> | null = null;
  private again = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoffMs = 1000;
  lastError: string | null = null;

  constructor(
    readonly path: string,
    private readonly send: SendBatch,
    private readonly log: (line: string) => void = () => {},
  ) {
    mkdirSync(dirname(path), { recursive: true });
  }

  /** Queues the message (synchronously, on disk) and starts sending in the background. */
  report(message: StatusMessage): void {
    const text = message.message.length > MAX_TEXT ? `${message.message.slice(0, MAX_TEXT)} … (cut; the agent's log has it all)` : message.message;
    appendFileSync(this.path, `${JSON.stringify({ id: randomUUID(), ...message, message: text })}\n`, { mode: 0o600 });
    void this.flush();
  }

  pending(): QueuedStatus[] {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      return [];
    }
    const out: QueuedStatus[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as QueuedStatus);
      } catch {
        // A line torn by a crash mid-append: it was never acknowledged by anyone; drop it.
      }
    }
    return out;
  }

  private remove(sent: Set<string>): void {
    const rest = this.pending().filter((m) => !sent.has(m.id));
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, rest.map((m) => `${JSON.stringify(m)}\n`).join(''), { mode: 0o600 });
    renameSync(tmp, this.path);
  }

  /** Sends everything queued; resolves when the queue is empty or a send failed (a retry is then scheduled). */
  flush(): Promise<void> {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      do {
        this.again = false;
        for (;;) {
          const batch = this.pending().slice(0, BATCH);
          if (batch.length === 0) break;
          try {
            await this.sendOrSplit(batch);
          } catch (err) {
            this.lastError = (err as Error).message;
            this.log(`status messages not delivered (${batch.length}+ queued in ${this.path}; retrying in ${Math.round(this.backoffMs / 1000)} s): ${this.lastError}`);
            this.scheduleRetry();
            return;
          }
          this.backoffMs = 1000;
          this.lastError = null;
          this.remove(new Set(batch.map((m) => m.id)));
        }
      } while (this.again);
    })().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  /** A rejected batch is sent one by one, so that only the message the server refuses is dropped. */
  private async sendOrSplit(batch: QueuedStatus[]): Promise<void> {
    try {
      await this.send(batch);
    } catch (err) {
      if (!(err instanceof RejectedBatch)) throw err;
      if (batch.length === 1) {
        this.log(`the server refuses status message ${batch[0]!.id} (${batch[0]!.kind}); dropped: ${err.message}`);
        return;
      }
      for (const m of batch) {
        await this.sendOrSplit([m]);
        this.remove(new Set([m.id]));
      }
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.flush();
    }, this.backoffMs);
    this.retryTimer.unref();
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
  }

  /** Tries to empty the queue within `timeoutMs` (before the agent exits); true when nothing is left. */
  async drain(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      await this.flush();
      if (this.pending().length === 0) return true;
      if (Date.now() >= end) return false;
      await sleep(Math.min(1000, end - Date.now()));
    }
  }

  close(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }
}
