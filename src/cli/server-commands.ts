// The distribution point's commands: `server`, the admin commands (image, dp, session, clients) that talk to
// a running server's REST API, and the client command `fetch`.
import { createReadStream, promises as fs, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Command, Option } from 'commander';
import { ApiClient, ApiError } from '../client/api.js';
import { ConfigError, DEFAULT_DATA_DIR, LOG_LEVELS, loadServerConfig } from '../config/server-config.js';
import type { ClientRecord, ImageRecord, SessionRecord } from '../db/repositories.js';
import { TOKEN_FILE } from '../server/admin-auth.js';
import { RATE_PROFILES, type DpSettings } from '../server/dp-settings.js';
import type { ImportJob } from '../server/imports.js';
import type { LiveSessionStatus } from '../server/session-manager.js';
import { Exit, checked, interruptSignal, log, progressBar, receiveExitCode } from './shared.js';
import { formatBytes, formatRate, parseDuration, parseIntOption, parseRate } from './units.js';

const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/** Exit codes of the admin commands (README "Distribution point server"). */
export const AdminExit = { ok: 0, invalid: 1, refused: 2, unreachable: 3, interrupted: 130 } as const;

type SessionView = SessionRecord & { live: LiveSessionStatus | null };

export interface AdminOptions {
  server?: string;
  token?: string;
  data?: string;
  json?: boolean;
}

export function adminOptions(cmd: Command): Command {
  return cmd
    .option('--server <url>', `server URL (or FLEETCAST_SERVER; default ${DEFAULT_SERVER})`)
    .option('--token <token>', 'admin token (or FLEETCAST_TOKEN; default: the admin-token file of the local data folder)')
    .option('--data <dir>', `local data folder holding the admin-token file (or FLEETCAST_DATA; default ./${DEFAULT_DATA_DIR})`)
    .option('--json', 'print JSON on stdout');
}

export function adminClient(o: AdminOptions): ApiClient {
  let token = o.token ?? process.env.FLEETCAST_TOKEN;
  if (!token) {
    const file = join(resolve(o.data ?? process.env.FLEETCAST_DATA ?? DEFAULT_DATA_DIR), TOKEN_FILE);
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch {
      /* no local token: the server will say what is missing */
    }
  }
  return new ApiClient({ server: o.server ?? process.env.FLEETCAST_SERVER ?? DEFAULT_SERVER, token });
}

/** Runs an admin action; API errors become a message and an exit code. */
export function adminAction<A extends unknown[]>(fn: (...args: A) => Promise<void>) {
  return async (...args: A): Promise<void> => {
    try {
      await fn(...args);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      process.stderr.write(`fleetcast: ${err.message}\n`);
      process.exitCode = err.status === 0 ? AdminExit.unreachable : err.status === 400 ? AdminExit.invalid : AdminExit.refused;
    }
  };
}

export function print(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export const orDash = (v: unknown) => (v === null || v === undefined || v === '' ? '-' : String(v));
const rateText = (bps: number | null) => (bps === null ? 'unlimited (adapts to loss)' : formatRate(bps));

function parseRateOrProfile(text: string): number | null {
  const profile = Object.entries(RATE_PROFILES).find(([name]) => name.toLowerCase().replace(/\s/g, '') === text.toLowerCase().replace(/\s/g, ''));
  if (profile) return profile[1];
  return parseRate(text);
}

function parseRange(name: string, parse: (s: string) => number) {
  return (text: string): [number, number] => {
    const m = /^\s*([^\s-]+)\s*-\s*([^\s-]+)\s*$/.exec(text);
    if (!m) throw new Error(`${name} must be START-END, got "${text}"`);
    return [parse(m[1]!), parse(m[2]!)];
  };
}

function imageText(i: ImageRecord): string {
  const lines = [
    `${i.name}${i.version ? ` (version ${i.version})` : ''}`,
    `  description      ${orDash(i.description)}`,
    `  format           ${i.format}`,
    `  size             ${formatBytes(i.size)} (${i.size} bytes)${i.uncompressedSize !== null ? `; ${formatBytes(i.uncompressedSize)} uncompressed` : ''}`,
    `  sha256           ${i.digest}`,
    `  allow multicast  ${i.allowMulticast ? 'yes' : 'no'}`,
    `  encrypt          ${i.encryptMulticast ? 'yes' : 'no'}`,
    `  multicast only   ${i.multicastOnly ? 'yes' : 'no'}`,
    `  imported         ${i.createdAt}`,
  ];
  const iso = i.details.iso as { volumeId?: string } | undefined;
  if (iso?.volumeId) lines.push(`  ISO volume id    ${iso.volumeId}`);
  const wim = i.details.wim as { images: { index: number; name: string; description?: string }[] } | undefined;
  if (wim) for (const w of wim.images) lines.push(`  WIM image ${w.index}      ${w.name}${w.description ? ` — ${w.description}` : ''}`);
  return lines.join('\n');
}

function delayText(seconds: number): string {
  return seconds % 60 === 0 ? `${seconds / 60} min` : seconds > 60 ? `${(seconds / 60).toFixed(2)} min` : `${seconds} s`;
}

function dpText(s: DpSettings): string {
  return [
    `multicast              ${s.multicastEnabled ? 'enabled' : 'disabled'}`,
    `address pool           ${s.addressPool === 'any' ? 'any (239.255.0.1–239.255.255.254)' : `${s.addressStart} – ${s.addressEnd}`}`,
    `UDP ports              ${s.portStart} – ${s.portEnd}`,
    `client transfer rate   ${rateText(s.transferRateBps)}`,
    `maximum clients        ${s.maxClients}`,
    `scheduled multicast    ${s.scheduledMulticast ? `yes: start after ${delayText(s.sessionStartDelaySeconds)} or at ${s.minimumSessionSize} clients` : 'no: a session starts when its first client asks'}`,
    `auto-cast              ${s.autoCast ? 'yes: clients may join a running session and catch up' : 'no'}`,
    `slow clients           ${s.slowClientHandling === 'none' ? 'no action' : `${s.slowClientHandling} below ${rateText(s.slowClientThresholdBps)}`}`,
  ].join('\n');
}

function sessionRow(s: SessionView): string[] {
  // Live: the clients in the session now; afterwards: how many of those admitted completed.
  const clients = s.live ? `${s.live.clients.length}` : `${s.clientsCompleted}/${s.clientCount} done`;
  return [String(s.id), s.imageName, `${s.group}:${s.port}`, s.state + (s.live ? ` (${s.live.phase})` : ''), s.createdAt, clients, orDash(s.endReason)];
}

export function registerServerCommands(program: Command): void {
  // `image import --version 2.1` and `fetch --version` mean the image's version: the program's own
  // --version (print fleetcast's) is only recognized before the command name.
  program.enablePositionalOptions();
  // ---- server ---------------------------------------------------------------------------------------------
  program
    .command('server')
    .description('run the distribution point: admin API, client API, multicast sessions and unicast HTTP')
    .option('--data <dir>', `data folder: database, content, admin token (or FLEETCAST_DATA; default ./${DEFAULT_DATA_DIR})`)
    .option('--config <file>', 'JSON config file (or FLEETCAST_CONFIG; default <data>/config.json if present)')
    .option('--listen <address:port>', 'HTTP address (or FLEETCAST_LISTEN; default 127.0.0.1:8080; 0.0.0.0:8080 for every interface)')
    .option('-i, --interface <name|address>', 'interface for multicast sessions (or FLEETCAST_INTERFACE)')
    .addOption(new Option('--log-level <level>', 'log level (or FLEETCAST_LOG_LEVEL; default info)').choices(LOG_LEVELS))
    .option('--client-secret <secret>', 'require this enrollment secret from clients (or FLEETCAST_CLIENT_SECRET)')
    .option('--public-url <url>', 'base URL given to clients for unicast downloads (or FLEETCAST_PUBLIC_URL)')
    .option('--mtu <bytes>', 'MTU of the multicast network (or FLEETCAST_MTU; default 1500)')
    .option('--ttl <hops>', 'multicast TTL (or FLEETCAST_TTL; default 1)')
    .option('--agent-poll-interval <seconds>', 'how often agents ask for policy (or FLEETCAST_AGENT_POLL_INTERVAL; default 60)')
    .action(async (o) => {
      let config;
      try {
        config = loadServerConfig({
          config: o.config,
          dataDir: o.data,
          listen: o.listen,
          interface: o.interface,
          logLevel: o.logLevel,
          clientSecret: o.clientSecret,
          publicUrl: o.publicUrl,
          mtu: o.mtu,
          ttl: o.ttl,
          agentPollInterval: o.agentPollInterval,
        });
      } catch (err) {
        if (err instanceof ConfigError) {
          process.stderr.write(`fleetcast: ${err.message}\n`);
          process.exitCode = Exit.usage;
          return;
        }
        throw err;
      }
      // Loaded here: the server (fastify, SQLite) is heavy, and every other command starts faster without it.
      const { startServer } = await import('../server/server.js');
      const server = await startServer(config, {
        onFirstToken: (token, file) =>
          process.stderr.write(
            `\nfleetcast: first start: created the admin token (shown only this once; also written to ${file}, mode 0600):\n\n    ${token}\n\n` +
              `Admin commands on this machine find it in the data folder; elsewhere pass --token or set FLEETCAST_TOKEN.\n\n`,
          ),
      });
      process.stderr.write(`fleetcast: server listening on ${server.url} (data ${config.dataDir}); Ctrl-C stops it\n`);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) process.exit(Exit.interrupted);
        stopping = true;
        server.app.log.info({ signal }, 'stopping');
        server.close().then(
          () => process.exit(Exit.ok),
          (err: Error) => {
            process.stderr.write(`fleetcast: shutdown failed: ${err.message}\n`);
            process.exit(Exit.io);
          },
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });

  // ---- image ----------------------------------------------------------------------------------------------
  const image = program.command('image').description('the content library: import, list, show, change and delete images');

  adminOptions(
    image
      .command('import')
      .description('import a raw, gzip, zstd, ISO or WIM image (all or nothing; Ctrl-C cancels and leaves the library as it was)')
      .argument('<path>', 'image file')
      .requiredOption('--name <name>', 'image name (letters, digits, . _ -)')
      .option('--version <version>', 'version label')
      .option('--description <text>', 'description')
      .option('--allow-multicast', 'allow transfer by multicast (default)')
      .option('--no-allow-multicast', 'unicast only')
      .option('--encrypt', 'encrypt multicast packets (a random key per session)')
      .option('--multicast-only', 'no unicast fallback: clients wait for a multicast session')
      .addOption(new Option('--format <format>', 'format (default: detected from the content)').choices(['raw', 'gzip', 'zstd', 'iso', 'wim']))
      .option('--upload', 'send the file over HTTP (default when the server is not on this machine)')
      .option('-q, --quiet', 'no progress on stderr'),
  ).action(
    adminAction(async (path: string, o) => {
      const api = adminClient(o);
      const file = resolve(path);
      const stat = await fs.stat(file).catch(() => null);
      if (!stat?.isFile()) {
        process.stderr.write(`fleetcast: ${file} is not a readable file\n`);
        process.exitCode = AdminExit.invalid;
        return;
      }
      const settings = {
        ...(o.allowMulticast === false ? { allowMulticast: false } : {}),
        ...(o.encrypt ? { encryptMulticast: true } : {}),
        ...(o.multicastOnly ? { multicastOnly: true } : {}),
      };
      const fields = { name: o.name, ...(o.version ? { version: o.version } : {}), ...(o.description ? { description: o.description } : {}), ...(o.format ? { format: o.format } : {}), ...settings };
      const host = new URL(api.base).hostname;
      const local = ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host);
      const quiet = Boolean(o.quiet || o.json);
      const controller = interruptSignal();
      let job: ImportJob;
      if (o.upload || !local) {
        const bar = progressBar(!quiet, 'upload |{bar}| {percentage}% | {value}/{total}');
        bar?.start(stat.size, 0);
        let sent = 0;
        const counter = new Transform({
          transform(chunk: Buffer, _e, cb) {
            sent += chunk.length;
            bar?.update(sent);
            cb(null, chunk);
          },
        });
        const query = new URLSearchParams(Object.entries(fields).map(([k, v]): [string, string] => [k, String(v)]));
        try {
          job = await api.upload<ImportJob>(`/api/v1/imports/upload?${query}`, createReadStream(file).pipe(counter), stat.size, controller.signal);
        } catch (err) {
          if (controller.signal.aborted) {
            process.exitCode = AdminExit.interrupted;
            return;
          }
          throw err;
        } finally {
          bar?.stop();
        }
      } else {
        job = await api.request<ImportJob>('POST', '/api/v1/imports', { path: file, ...fields });
      }
      const bar = progressBar(!quiet, 'import |{bar}| {percentage}% | {value}/{total} | {stage}');
      bar?.start(Math.max(1, job.totalBytes || stat.size), 0, { stage: job.stage });
      while (job.state === 'running') {
        await sleep(200);
        if (controller.signal.aborted) {
          job = await api.request<ImportJob>('DELETE', `/api/v1/imports/${job.id}`);
          break;
        }
        job = await api.request<ImportJob>('GET', `/api/v1/imports/${job.id}`);
        bar?.setTotal(Math.max(1, job.totalBytes || stat.size));
        bar?.update(job.doneBytes, { stage: job.stage });
      }
      bar?.stop();
      if (o.json) process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
      if (job.state === 'completed') {
        if (!o.json) process.stdout.write(`${imageText(job.image!)}\n`);
        return;
      }
      process.stderr.write(`fleetcast: import ${job.state}: ${job.error?.message ?? ''}${job.state === 'cancelled' ? ' (the library is unchanged)' : ''}\n`);
      process.exitCode = job.state === 'cancelled' ? AdminExit.interrupted : job.error?.code === 'conflict' ? AdminExit.refused : AdminExit.invalid;
    }),
  );

  adminOptions(image.command('list').description('list the images')).action(
    adminAction(async (o) => {
      const images = await adminClient(o).request<ImageRecord[]>('GET', '/api/v1/images');
      print(o.json, images, () =>
        images.length === 0
          ? 'no images yet: fleetcast image import PATH --name NAME'
          : table([
              ['NAME', 'VERSION', 'FORMAT', 'SIZE', 'MULTICAST', 'SHA256'],
              ...images.map((i) => [i.name, orDash(i.version), i.format, formatBytes(i.size), i.multicastOnly ? 'only' : i.allowMulticast ? (i.encryptMulticast ? 'encrypted' : 'yes') : 'no', i.digest.slice(0, 16)]),
            ]),
      );
    }),
  );

  adminOptions(image.command('show').description('show one image').argument('<name>')).action(
    adminAction(async (name: string, o) => {
      const i = await adminClient(o).request<ImageRecord>('GET', `/api/v1/images/${encodeURIComponent(name)}`);
      print(o.json, i, () => imageText(i));
    }),
  );

  adminOptions(image.command('delete').description('delete an image (refused while a session uses it)').argument('<name>')).action(
    adminAction(async (name: string, o) => {
      await adminClient(o).request('DELETE', `/api/v1/images/${encodeURIComponent(name)}`);
      print(o.json, { deleted: name }, () => `deleted ${name}`);
    }),
  );

  adminOptions(
    image
      .command('set')
      .description("change an image's version, description or distribution settings")
      .argument('<name>')
      .option('--version <version>', 'version label')
      .option('--description <text>', 'description')
      .option('--allow-multicast', 'allow transfer by multicast')
      .option('--no-allow-multicast', 'unicast only')
      .option('--encrypt', 'encrypt multicast packets')
      .option('--no-encrypt', 'send multicast in the clear')
      .option('--multicast-only', 'no unicast fallback')
      .option('--no-multicast-only', 'allow unicast fallback'),
  ).action(
    adminAction(async (name: string, o) => {
      const changes = {
        ...(o.version !== undefined ? { version: o.version } : {}),
        ...(o.description !== undefined ? { description: o.description } : {}),
        ...(o.allowMulticast !== undefined ? { allowMulticast: o.allowMulticast } : {}),
        ...(o.encrypt !== undefined ? { encryptMulticast: o.encrypt } : {}),
        ...(o.multicastOnly !== undefined ? { multicastOnly: o.multicastOnly } : {}),
      };
      if (Object.keys(changes).length === 0) {
        process.stderr.write('fleetcast: nothing to change: give --version, --description, --[no-]allow-multicast, --[no-]encrypt or --[no-]multicast-only\n');
        process.exitCode = AdminExit.invalid;
        return;
      }
      const i = await adminClient(o).request<ImageRecord>('PATCH', `/api/v1/images/${encodeURIComponent(name)}`, changes);
      print(o.json, i, () => imageText(i));
    }),
  );

  // ---- dp -------------------------------------------------------------------------------------------------
  const dp = program.command('dp').description("the distribution point's multicast settings");

  adminOptions(dp.command('show').description('show the multicast settings')).action(
    adminAction(async (o) => {
      const s = await adminClient(o).request<DpSettings>('GET', '/api/v1/dp');
      print(o.json, s, () => dpText(s));
    }),
  );

  const rateHelp = `bits/s such as 100M or 1G, a profile (${Object.keys(RATE_PROFILES).map((p) => `"${p}"`).join(', ')})`;
  adminOptions(
    dp
      .command('set')
      .description('change multicast settings (new sessions use them)')
      .option('--multicast', 'enable multicast')
      .option('--no-multicast', 'disable multicast (clients get unicast)')
      .option('--address-pool <any|START-END>', 'multicast groups: "any" (239.255.0.0/16) or a range such as 239.255.0.1-239.255.0.255')
      .option('--ports <START-END>', 'UDP port range, e.g. 63000-64000', checked(parseRange('ports', parseIntOption('port', 0, 65535))))
      .option('--rate <rate>', `client transfer rate: ${rateHelp}`, checked(parseRateOrProfile))
      .option('--max-clients <n>', 'multicast clients at once', checked(parseIntOption('max-clients', 1, 100_000)))
      .option('--scheduled', 'scheduled multicast: wait for --min-clients or --start-delay')
      .option('--no-scheduled', 'start a session as soon as a client asks')
      .option('--start-delay <duration>', 'session start delay: 15m, 90s (a bare number is minutes)', checked(parseDuration('start-delay')))
      .option('--min-clients <n>', 'minimum session size', checked(parseIntOption('min-clients', 1, 100_000)))
      .option('--auto-cast', 'late clients join a running session and catch up')
      .option('--no-auto-cast', 'a running session admits nobody new')
      .addOption(new Option('--slow-clients <mode>', 'slow-client handling').choices(['none', 'disconnect', 'slower-stream']))
      .option('--slow-threshold <rate>', `slow below this rate: ${rateHelp}`, checked(parseRateOrProfile)),
  ).action(
    adminAction(async (o) => {
      const changes: Partial<DpSettings> = {};
      if (o.multicast !== undefined) changes.multicastEnabled = o.multicast;
      if (o.addressPool !== undefined) {
        if (o.addressPool === 'any') changes.addressPool = 'any';
        else {
          const m = /^\s*(\S+?)\s*-\s*(\S+)\s*$/.exec(o.addressPool);
          if (!m) {
            process.stderr.write(`fleetcast: --address-pool must be "any" or START-END, got "${o.addressPool}"\n`);
            process.exitCode = AdminExit.invalid;
            return;
          }
          Object.assign(changes, { addressPool: 'range', addressStart: m[1], addressEnd: m[2] });
        }
      }
      if (o.ports) [changes.portStart, changes.portEnd] = o.ports;
      if (o.rate !== undefined) changes.transferRateBps = o.rate;
      if (o.maxClients !== undefined) changes.maxClients = o.maxClients;
      if (o.scheduled !== undefined) changes.scheduledMulticast = o.scheduled;
      if (o.startDelay !== undefined) changes.sessionStartDelaySeconds = o.startDelay;
      if (o.minClients !== undefined) changes.minimumSessionSize = o.minClients;
      if (o.autoCast !== undefined) changes.autoCast = o.autoCast;
      if (o.slowClients !== undefined) changes.slowClientHandling = o.slowClients;
      if (o.slowThreshold !== undefined) changes.slowClientThresholdBps = o.slowThreshold;
      if (Object.keys(changes).length === 0) {
        process.stderr.write('fleetcast: nothing to change (see fleetcast dp set --help)\n');
        process.exitCode = AdminExit.invalid;
        return;
      }
      const s = await adminClient(o).request<DpSettings>('PATCH', '/api/v1/dp', changes);
      print(o.json, s, () => dpText(s));
    }),
  );

  // ---- sessions and clients -------------------------------------------------------------------------------
  const session = program.command('session').description('multicast sessions: list, live status, cancel');

  adminOptions(
    session
      .command('list')
      .description('sessions, newest first')
      .addOption(new Option('--state <state>', 'only sessions in this state').choices(['waiting', 'running', 'completed', 'failed', 'cancelled', 'aborted']))
      .option('--image <name>', 'only sessions of this image')
      .option('--limit <n>', 'at most this many', checked(parseIntOption('limit', 1, 10_000)), 50),
  ).action(
    adminAction(async (o) => {
      const q = new URLSearchParams({ limit: String(o.limit), ...(o.state ? { state: o.state } : {}), ...(o.image ? { image: o.image } : {}) });
      const list = await adminClient(o).request<SessionView[]>('GET', `/api/v1/sessions?${q}`);
      print(o.json, list, () => (list.length ? table([['ID', 'IMAGE', 'GROUP:PORT', 'STATE', 'CREATED', 'CLIENTS', 'END'], ...list.map(sessionRow)]) : 'no sessions'));
    }),
  );

  adminOptions(session.command('show').description('a session with its clients (live progress while it runs)').argument('<id>', 'session id', checked(parseIntOption('id', 1, Number.MAX_SAFE_INTEGER)))).action(
    adminAction(async (id: number, o) => {
      const api = adminClient(o);
      const s = await api.request<SessionView>('GET', `/api/v1/sessions/${id}`);
      const clients = await api.request<ClientRecord[]>('GET', `/api/v1/clients?session=${id}`);
      print(o.json, { ...s, clients }, () => {
        const lines = [
          `session ${s.id}: ${s.imageName} on ${s.group}:${s.port}, ${s.state}${s.endReason ? ` (${s.endReason})` : ''}`,
          `  created ${s.createdAt}; started ${orDash(s.startedAt)}; ended ${orDash(s.endedAt)}`,
        ];
        if (s.wireBytes !== null && s.wireBytes !== undefined) {
          lines.push(`  wire ${formatBytes(s.wireBytes)}; packets: ${s.sourcePackets} source, ${s.parityPackets} parity, ${s.controlPackets} control; ${((s.durationMs ?? 0) / 1000).toFixed(2)} s`);
        }
        if (s.live) {
          lines.push(`  live: ${s.live.phase}${s.live.admitting ? ', admitting' : ''}; rate ${s.live.rateBps ? formatRate(s.live.rateBps) : '-'}`);
          lines.push(table([['  CLIENT', 'STATE', 'PROGRESS', 'REPAIRS'], ...s.live.clients.map((c) => [`  ${c.name}`, c.outcome, `${Math.round(c.progress * 100)} %`, String(c.repairsRequested)])]));
        } else if (clients.length) {
          lines.push(table([['  CLIENT', 'OUTCOME', 'BYTES', 'SECONDS', 'REPAIRS', 'REASON'], ...clients.map(clientRow)]));
        }
        return lines.join('\n');
      });
    }),
  );

  adminOptions(
    session
      .command('cancel')
      .description('cancel a live session')
      .argument('<id>', 'session id', checked(parseIntOption('id', 1, Number.MAX_SAFE_INTEGER)))
      .option('--reason <text>', 'recorded with the session'),
  ).action(
    adminAction(async (id: number, o) => {
      const s = await adminClient(o).request<SessionView>('POST', `/api/v1/sessions/${id}/cancel`, o.reason ? { reason: o.reason } : {});
      print(o.json, s, () => `session ${s.id} ${s.state}: ${orDash(s.endReason)}`);
    }),
  );

  adminOptions(
    program
      .command('clients')
      .description("clients served and their outcomes (completed, failed, dropped, fell back to unicast), newest first")
      .option('--session <id>', 'only this session', checked(parseIntOption('session', 1, Number.MAX_SAFE_INTEGER)))
      .option('--image <name>', 'only this image')
      .addOption(new Option('--outcome <outcome>', 'only this outcome').choices(['pending', 'completed', 'failed', 'dropped', 'fell-back-to-unicast']))
      .option('--limit <n>', 'at most this many', checked(parseIntOption('limit', 1, 10_000)), 50),
  ).action(
    adminAction(async (o) => {
      const q = new URLSearchParams({ limit: String(o.limit), ...(o.session ? { session: String(o.session) } : {}), ...(o.image ? { image: o.image } : {}), ...(o.outcome ? { outcome: o.outcome } : {}) });
      const list = await adminClient(o).request<ClientRecord[]>('GET', `/api/v1/clients?${q}`);
      print(o.json, list, () =>
        list.length ? table([['CLIENT', 'OUTCOME', 'BYTES', 'SECONDS', 'REPAIRS', 'REASON', 'IMAGE', 'SESSION', 'TRANSPORT'], ...list.map((c) => [...clientRow(c), c.imageName, orDash(c.sessionId), c.transport])]) : 'no clients yet',
      );
    }),
  );

  // ---- fetch ----------------------------------------------------------------------------------------------
  program
    .command('fetch')
    .description('get an image from a distribution point: multicast when the server offers it, unicast fallback if allowed; verified, then renamed into place')
    .requiredOption('--server <url>', 'distribution point URL, e.g. http://10.0.0.5:8080')
    .requiredOption('--image <name>', 'image name')
    .requiredOption('-o, --output <file>', 'where to write the image (FILE.part until verified)')
    .option('--version <version>', 'require this image version')
    .option('-i, --interface <name|address>', 'network interface for multicast')
    .option('--name <name>', 'client name reported to the server (default: hostname)')
    .option('--mac <address>', 'client MAC address reported to the server (default: that of --interface)')
    .option('--uuid <uuid>', 'client SMBIOS UUID reported to the server')
    .option('--client-secret <secret>', 'enrollment secret, when the server requires one (or FLEETCAST_CLIENT_SECRET)')
    .option('--timeout <seconds>', 'give up after this long in all (default: no limit)', checked(parseIntOption('timeout', 1, 1e9)))
    .option('--json', 'print a JSON summary on stdout')
    .option('-q, --quiet', 'no progress or messages on stderr')
    .action(async (o) => {
      const quiet = Boolean(o.quiet || o.json);
      if (!isAbsolute(o.output) && o.output === '-') {
        process.stderr.write('fleetcast: fetch writes a file (-o FILE); stdout is not supported\n');
        process.exitCode = Exit.usage;
        return;
      }
      const { fetchImage } = await import('../client/fetch.js');
      const controller = interruptSignal();
      const bar = progressBar(!quiet, '{phase} |{bar}| {percentage}% | {value}/{total} | ETA {eta_formatted}');
      let phase = '';
      const result = await fetchImage({
        server: o.server,
        image: o.image,
        version: o.version,
        output: o.output,
        iface: o.interface,
        clientName: o.name,
        mac: o.mac,
        uuid: o.uuid,
        clientSecret: o.clientSecret ?? process.env.FLEETCAST_CLIENT_SECRET,
        timeoutMs: o.timeout !== undefined ? o.timeout * 1000 : undefined,
        signal: controller.signal,
        onPhase: (p, total, detail) => {
          bar?.stop();
          phase = p;
          log(quiet && !bar, `${p}: ${detail}`);
          if (!bar) log(quiet, `${p}: ${detail}`);
          if (p !== 'waiting' && total > 0) bar?.start(total, 0, { phase });
        },
        onProgress: (done) => bar?.update(done, { phase }),
      }).finally(() => bar?.stop());
      const code = result.ok
        ? Exit.ok
        : result.failure === 'interrupted'
          ? Exit.interrupted
          : result.failure === 'integrity'
            ? Exit.integrity
            : result.failure === 'io'
              ? Exit.io
              : result.failure === 'timeout' || result.failure === 'unreachable'
                ? Exit.timeout
                : result.receiveReason
                  ? receiveExitCode({ ok: false, reason: result.receiveReason }, false)
                  : Exit.transferFailed;
      if (o.json) process.stdout.write(`${JSON.stringify({ ...result, exitCode: code }, null, 2)}\n`);
      if (result.ok) log(quiet, `${result.message}: ${o.output} (${formatBytes(result.bytes ?? 0)} in ${((result.durationMs ?? 0) / 1000).toFixed(2)} s)`);
      else process.stderr.write(`fleetcast: fetch failed (${result.failure}): ${result.message}\n`);
      process.exitCode = code;
    });
}

function clientRow(c: ClientRecord): string[] {
  return [c.clientName, c.outcome, c.bytes !== null ? formatBytes(c.bytes) : '-', c.durationMs !== null ? (c.durationMs / 1000).toFixed(2) : '-', orDash(c.repairsRequested), orDash(c.reason)];
}
