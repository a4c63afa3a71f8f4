// Test helpers: a real `fleetcast server` process on a temp data folder, CLI runs, API calls.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const children = new Set<ChildProcess>();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A `fleetcast` CLI process, killed if the test process exits first. */
export function spawnCli(args: string[], opts: SpawnOptions = {}): ChildProcess {
  const child = spawn(process.execPath, [CLI, ...args], opts);
  children.add(child);
  child.on('close', () => children.delete(child));
  return child;
}

export function run(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): { child: ChildProcess; done: Promise<Run> } {
  const child = spawnCli(args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 90_000);
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, done };
}

export function tempDir(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface TestServer {
  url: string;
  dataDir: string;
  token: string;
  child: ChildProcess;
  /** stderr so far (first-start banner, listening line). */
  stderr: () => string;
  /** JSON lines the server logged. */
  logs: () => Record<string, unknown>[];
  /** Admin API call with the token; returns status and parsed body. */
  api: <T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: T }>;
  /** CLI admin command against this server. */
  cli: (args: string[]) => Promise<Run>;
  /** SIGTERM and wait for the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Starts `fleetcast server` on a random port; stopped (SIGKILL if still running) when the test ends. */
export async function startServer(t: TestContext, dataDir: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<TestServer> {
  const { child, done } = run(['server', '--data', dataDir, '--listen', '127.0.0.1:0', '--interface', 'lo', '--log-level', 'info', ...extraArgs], { timeoutMs: 600_000, env });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = /server listening on (http:\/\/\S+)/.exec(stderr);
      if (m) resolve(m[1]!);
    };
    child.stderr!.on('data', check);
    void done.then((r) => reject(new Error(`server exited (${r.code}) before listening: ${stderr}`)));
  });
  const token = env.FLEETCAST_ADMIN_TOKEN ?? readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    url,
    dataDir,
    token,
    child,
    stderr: () => stderr,
    logs: () =>
      stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    api,
    cli: (args) => run([...args, '--server', url, '--token', token]).done,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      return (await done).code;
    },
  };
}

/** Random, test-private multicast pools, so that concurrent runs do not meet. */
export function privatePools(): { addressPool: 'range'; addressStart: string; addressEnd: string; portStart: number; portEnd: number } {
  const third = 1 + Math.floor(Math.random() * 250);
  const portStart = 20000 + Math.floor(Math.random() * 40000);
  return { addressPool: 'range', addressStart: `239.255.${third}.1`, addressEnd: `239.255.${third}.200`, portStart, portEnd: portStart + 50 };
}

/** Polls until the predicate holds (the condition, not a duration, is what tests wait for). */
export async function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
