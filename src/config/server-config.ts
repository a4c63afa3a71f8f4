// Server configuration: defaults < config file (JSON) < environment (FLEETCAST_*) < command-line flags.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServerConfig {
  /** Database, content store, admin token file. */
  dataDir: string;
  listen: { host: string; port: number };
  /** Interface for multicast sessions (name or address); null: the route to the group. */
  interface: string | null;
  logLevel: LogLevel;
  /** Admin bearer token given by the operator instead of a generated one. */
  adminToken: string | null;
  /** When set, clients must present it (X-Fleetcast-Client-Secret) to use the client API and content. */
  clientSecret: string | null;
  /** Base URL clients are told to download from; default: the URL they reached the server at. */
  publicUrl: string | null;
  /** MTU of the multicast network: sets the symbol size. */
  mtu: number;
  /** Multicast TTL (1: stays on the local network). */
  ttl: number;
  /** How often agents are told to ask for policy (they add jitter). */
  agentPollIntervalSeconds: number;
  /** Where the settings came from, for the startup log. */
  sources: string[];
}

export const DEFAULT_DATA_DIR = 'fleetcast-data';
export const DEFAULT_LISTEN = '127.0.0.1:8080';

export class ConfigError extends Error {}

/** The settings a config file, the environment or flags may give (all optional, as text or JSON values). */
export interface ConfigInput {
  dataDir?: string;
  listen?: string;
  interface?: string;
  logLevel?: string;
  adminToken?: string;
  clientSecret?: string;
  publicUrl?: string;
  mtu?: number | string;
  ttl?: number | string;
  agentPollInterval?: number | string;
}

const FILE_KEYS: (keyof ConfigInput)[] = ['dataDir', 'listen', 'interface', 'logLevel', 'adminToken', 'clientSecret', 'publicUrl', 'mtu', 'ttl', 'agentPollInterval'];

export const ENV_NAMES: Record<keyof ConfigInput, string> = {
  dataDir: 'FLEETCAST_DATA',
  listen: 'FLEETCAST_LISTEN',
  interface: 'FLEETCAST_INTERFACE',
  logLevel: 'FLEETCAST_LOG_LEVEL',
  adminToken: 'FLEETCAST_ADMIN_TOKEN',
  clientSecret: 'FLEETCAST_CLIENT_SECRET',
  publicUrl: 'FLEETCAST_PUBLIC_URL',
  mtu: 'FLEETCAST_MTU',
  ttl: 'FLEETCAST_TTL',
  agentPollInterval: 'FLEETCAST_AGENT_POLL_INTERVAL',
};

/** "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80" or just a port (then on 127.0.0.1). */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):)?(\d+)$/.exec(text.trim());
  const host = m ? (m[1] ?? m[2] ?? '127.0.0.1') : '';
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535) || (host !== 'localhost' && isIP(host) === 0)) {
    throw new ConfigError(`listen "${text}" must be ADDRESS:PORT, e.g. 127.0.0.1:8080, 0.0.0.0:8080 (every interface) or [::1]:8080`);
  }
  return { host, port };
}

function readConfigFile(path: string, required: boolean): ConfigInput | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConfigError(`cannot read the config file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`config file ${path} must hold a JSON object`);
  const unknown = Object.keys(parsed).filter((k) => !FILE_KEYS.includes(k as keyof ConfigInput));
  if (unknown.length) throw new ConfigError(`config file ${path}: unknown setting(s) ${unknown.join(', ')} (known: ${FILE_KEYS.join(', ')})`);
  return parsed as ConfigInput;
}

function fromEnv(env: NodeJS.ProcessEnv): ConfigInput {
  const out: ConfigInput = {};
  for (const [key, name] of Object.entries(ENV_NAMES) as [keyof ConfigInput, string][]) {
    const v = env[name];
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out;
}

function intSetting(name: string, v: number | string, min: number, max: number): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * Resolves the configuration. The data folder comes first (flag, env, default), because the default config
 * file lives in it; an explicit --config / FLEETCAST_CONFIG file must exist and may also name the data folder.
 */
export function loadServerConfig(flags: ConfigInput & { config?: string }, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ServerConfig {
  const envInput = fromEnv(env);
  const explicitFile = flags.config ?? env.FLEETCAST_CONFIG;
  const sources = ['defaults'];
  let file: ConfigInput | null = null;
  let dataDir = flags.dataDir ?? envInput.dataDir;
  if (explicitFile) {
    file = readConfigFile(resolve(cwd, explicitFile), true);
    sources.push(`config file ${resolve(cwd, explicitFile)}`);
    dataDir ??= file?.dataDir;
  }
  dataDir = resolve(cwd, dataDir ?? DEFAULT_DATA_DIR);
  if (!explicitFile) {
    const path = join(dataDir, 'config.json');
    file = readConfigFile(path, false);
    if (file) sources.push(`config file ${path}`);
  }
  if (Object.keys(envInput).length) sources.push(`environment (${Object.keys(envInput).map((k) => ENV_NAMES[k as keyof ConfigInput]).join(', ')})`);
  const definedFlags = Object.fromEntries(Object.entries(flags).filter(([k, v]) => v !== undefined && k !== 'config'));
  if (Object.keys(definedFlags).length) sources.push('command-line flags');
  const merged: ConfigInput = { ...file, ...envInput, ...definedFlags };

  const logLevel = (merged.logLevel ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`log level "${merged.logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  if (merged.adminToken !== undefined && merged.adminToken.length < 16) {
    throw new ConfigError(`the configured admin token is too short (${merged.adminToken.length} characters): use at least 16 random characters, e.g. from \`openssl rand -hex 24\``);
  }
  let publicUrl: string | null = null;
  if (merged.publicUrl) {
    try {
      const u = new URL(merged.publicUrl);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
      publicUrl = u.toString().replace(/\/$/, '');
    } catch {
      throw new ConfigError(`publicUrl "${merged.publicUrl}" must be an http(s) URL, e.g. http://dp1.example.net:8080`);
    }
  }
  return {
    dataDir,
    listen: parseListen(merged.listen ?? DEFAULT_LISTEN),
    interface: merged.interface ?? null,
    logLevel,
    adminToken: merged.adminToken ?? null,
    clientSecret: merged.clientSecret ?? null,
    publicUrl,
    mtu: intSetting('mtu', merged.mtu ?? 1500, 576, 65535),
    ttl: intSetting('ttl', merged.ttl ?? 1, 0, 255),
    agentPollIntervalSeconds: intSetting('agentPollInterval', merged.agentPollInterval ?? 60, 1, 86400),
    sources,
  };
}
