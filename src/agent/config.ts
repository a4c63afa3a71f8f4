// The agent's local configuration on a machine: which disks task sequences may write to, and where it keeps
// its state and log. Only this file (or --target on the command line) can allow a destructive step.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { checkTargetConfigs, type TargetConfig } from './targets.js';

export interface AgentConfig {
  targets: TargetConfig[];
  /** State files, scratch space and the content cache (default ./fleetcast-agent or $FLEETCAST_AGENT_DIR). */
  dataDir: string;
  /** Local log file (default <dataDir>/agent.log). */
  logFile: string;
}

export function defaultAgentConfig(): AgentConfig {
  const dataDir = resolve(process.env.FLEETCAST_AGENT_DIR ?? 'fleetcast-agent');
  return { targets: [], dataDir, logFile: join(dataDir, 'agent.log') };
}

/** Reads { "targets": [{ "name", "path" }], "dataDir"?, "logFile"? }; relative paths are relative to the file. */
export function loadAgentConfig(path: string): AgentConfig {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read agent config ${path}: ${(err as Error).message}`);
  }
  const base = dirname(resolve(path));
  const known = ['targets', 'dataDir', 'logFile'];
  const unknown = Object.keys(doc ?? {}).filter((k) => !known.includes(k));
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || unknown.length) throw new Error(`agent config ${path}: expected an object with ${known.join(', ')}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`);
  const targets = doc.targets ?? [];
  if (!Array.isArray(targets) || !targets.every((t) => typeof t?.name === 'string' && /^[A-Za-z][A-Za-z0-9_-]*$/.test(t.name) && typeof t?.path === 'string' && t.path)) {
    throw new Error(`agent config ${path}: "targets" must be a list of { "name": "disk0", "path": "/dev/sdb" }`);
  }
  for (const key of ['dataDir', 'logFile'] as const) if (doc[key] !== undefined && typeof doc[key] !== 'string') throw new Error(`agent config ${path}: "${key}" must be a path`);
  const config = defaultAgentConfig();
  config.targets = targets.map((t: TargetConfig) => ({ name: t.name, path: t.path.startsWith('/dev/') ? t.path : resolve(base, t.path) }));
  checkTargetConfigs(config.targets);
  if (typeof doc.dataDir === 'string') {
    config.dataDir = resolve(base, doc.dataDir);
    config.logFile = join(config.dataDir, 'agent.log');
  }
  if (typeof doc.logFile === 'string') config.logFile = resolve(base, doc.logFile);
  return config;
}
