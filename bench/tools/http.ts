// Plain unicast HTTP: a small node server on the sender host serves the image; every receiver downloads
// it at once (curl, or a node client when curl is missing). TCP does the reliability, so the sender's
// wire bytes grow with the number of receivers.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findExecutable } from '../../src/testlan/system.js';
import { ensureCommands } from '../deps.js';
import { pause } from '../proc.js';
import type { RunContext, Tool, ToolOutcome } from './types.js';

const here = dirname(fileURLToPath(import.meta.url));
const SERVER = join(here, '..', 'http-server.js');
const CLIENT = join(here, '..', 'http-get.js');

export const http: Tool = {
  name: 'http',
  description: 'unicast HTTP: node http server on the sender, all receivers download at once with curl',
  async check({ install }) {
    // curl is preferred but optional: without it the node client is used
    await ensureCommands(['curl'], 'curl', install);
    return null;
  },
  async version() {
    return `node ${process.version} server, ${findExecutable('curl') ? 'curl client' : 'node client'}`;
  },
  // TCP fits its segments to the MTU itself: IPv4 20 + TCP 20 + the timestamp option 12 (on by default in Linux)
  payloadBytes: (mtu) => mtu - 52,
  async run(ctx: RunContext): Promise<ToolOutcome> {
    const { lan } = ctx;
    const serverArgv = [process.execPath, SERVER, ctx.image.path, String(ctx.port), lan.sender.address];
    const server = ctx.start(lan.sender, serverArgv, 'http-server', true);
    const ready = performance.now() + 10_000;
    while (!server.stdout().includes('LISTENING') && !server.exit && performance.now() < ready && !ctx.signal.aborted) {
      await pause(10, ctx.signal);
    }
    const url = `http://${lan.sender.address}:${ctx.port}/image`;
    const curl = findExecutable('curl');
    const clientArgv = (out: string): string[] =>
      curl ? [curl, '--silent', '--show-error', '--fail', '--output', out, url] : [process.execPath, CLIENT, url, out];
    if (!server.stdout().includes('LISTENING')) {
      server.child.kill('SIGKILL');
      const exit = await server.exited;
      return {
        sender: exit,
        receivers: new Map(),
        failedToStart: `http server did not start: ${server.tail().trim().slice(-300)}`,
        argv: { sender: serverArgv.join(' '), receiver: clientArgv('OUT').join(' ') },
      };
    }
    ctx.markStart();
    const clients = lan.receivers.map((host) => ctx.start(host, clientArgv(ctx.outputPath(host)), `http-client-${host.name}`));
    for (const proc of clients) void proc.exited.then((exit) => ctx.receiverDone(proc.host, exit.at));
    await Promise.all(clients.map((p) => p.exited));
    server.child.kill('SIGTERM');
    const serverExit = await Promise.race([server.exited, pause(2000).then(() => null)]);
    return {
      sender: serverExit,
      receivers: new Map(clients.map((p) => [p.host.name, p.exit ?? 'still running'])),
      argv: { sender: serverArgv.join(' '), receiver: clientArgv('OUT').join(' ') },
    };
  },
};
