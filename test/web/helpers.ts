// Test helpers of the web console: a real server on a fresh temp folder, cleaned up in the order that works.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startServer, type TestServer } from '../server/helpers.js';

export interface WebTestServer {
  dir: string;
  server: TestServer;
  /** Runs before the server stops (e.g. closing a browser that writes its profile into `dir`). */
  atEnd(cleanup: () => Promise<unknown>): void;
}

/**
 * Starts `fleetcast server` with its data in a new temp folder. At the end of the test, even on failure: the
 * atEnd cleanups, then the server stops, then the folder goes (node:test runs after-hooks in the order they
 * were added, so one hook does all three in this order).
 */
export async function startWebServer(t: TestContext, prefix: string): Promise<WebTestServer> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const cleanups: (() => Promise<unknown>)[] = [];
  let server: TestServer | undefined;
  t.after(async () => {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
  server = await startServer(t, join(dir, 'data'));
  return { dir, server, atEnd: (cleanup) => cleanups.push(cleanup) };
}
