// Processes started inside test-LAN hosts for a benchmark run: output goes to a log file (and a short
// tail is kept for the report), and the exit is a promise with its time.

import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import type { Lan, LanHost } from '../src/testlan/lan.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() when the process exited */
  at: number;
  /** spawn failed (e.g. command not found) */
  error?: string;
}

export interface Proc {
  host: LanHost;
  argv: readonly string[];
  child: ChildProcess;
  startedAt: number;
  exited: Promise<ExitInfo>;
  /** set once exited */
  exit: ExitInfo | null;
  /** stdout so far (only when keepStdout was asked) */
  stdout(): string;
  /** last few KiB of stdout+stderr */
  tail(): string;
}

const TAIL_BYTES = 4096;

/**
 * Variables the tools run without: they change nothing in a transfer but cost every Node process at its start.
 * With NODE_EXTRA_CA_CERTS Node parses that CA bundle before running any code (this machine sets it to the
 * system's 144 certificates: `node -e 0` took 61 ms instead of 22, and fleetcast's sender started 40 ms later
 * in every run, 1.2 % of the 500 Mbit/s minimum); no transfer here uses TLS.
 */
export const TOOL_ENV_DROPPED = ['NODE_EXTRA_CA_CERTS'] as const;

export function toolEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of TOOL_ENV_DROPPED) delete out[name];
  return out;
}

export function startProc(lan: Lan, host: LanHost, argv: readonly string[], logPath: string, keepStdout = false): Proc {
  const log = createWriteStream(logPath);
  log.on('error', () => {});
  log.write(`$ ${argv.join(' ')}\n`);
  let tail = '';
  let out = '';
  const child = lan.spawn(host, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: toolEnv() });
  const onData = (isStdout: boolean) => (chunk: Buffer): void => {
    if (!log.writableEnded) log.write(chunk);
    const text = chunk.toString('utf8');
    if (isStdout && keepStdout) out += text;
    tail = (tail + text).slice(-TAIL_BYTES);
  };
  child.stdout?.on('data', onData(true));
  child.stderr?.on('data', onData(false));
  const proc: Proc = {
    host,
    argv,
    child,
    startedAt: performance.now(),
    exit: null,
    exited: new Promise<ExitInfo>((resolve) => {
      let spawnError: string | undefined;
      child.once('error', (error) => {
        spawnError = error.message;
        // 'close' may not follow a spawn error
        if (child.pid === undefined) finish(null, null);
      });
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (proc.exit) return;
        proc.exit = { code, signal, at: performance.now(), ...(spawnError ? { error: spawnError } : {}) };
        // output may still be in flight; a daemon that inherited the pipes may keep them open, so do not wait for 'close' forever
        const endLog = setTimeout(() => log.end(), 500);
        child.once('close', () => {
          clearTimeout(endLog);
          log.end();
        });
        resolve(proc.exit);
      };
      child.once('exit', (code, signal) => finish(code, signal));
    }),
    stdout: () => out,
    tail: () => tail,
  };
  return proc;
}

/** Resolves after ms, or earlier when the signal aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export function describeExit(exit: ExitInfo | null): string {
  if (!exit) return 'running';
  if (exit.error) return `failed to start (${exit.error})`;
  if (exit.signal) return `killed by ${exit.signal}`;
  return `exit ${exit.code}`;
}
