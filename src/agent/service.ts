// The agent as a service on a managed machine: registers the device with the site server (or is recognised
// again by SMBIOS UUID / MAC), polls its policy, runs required deployments at their deadline and available
// ones on request, fetches content through the server, reports every status message (queued on disk), and
// continues after a restart from the run's state file.
//
// Data folder (--data):
//   device.json              server URL, device id, credential (mode 0600)
//   outbox.jsonl             status messages not yet delivered
//   agent.log                local log
//   agent.lock               pid of the running service
//   requests/<id>            "run this deployment" requests from `fleetcast agent run --deployment ID`
//   deployments/<id>/        sequence.json (what the server sent), state.json (the runner's), work/ (content)
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiClient, ApiError, DEVICE_CREDENTIAL_HEADER } from '../client/api.js';
import type { ContentAccess } from '../db/deployment-repositories.js';
import { gatherMachineFacts, type MachineFacts } from './machine.js';
import { Outbox, RejectedBatch, type QueuedStatus } from './outbox.js';
import { LogFile, type Reporter, type StatusMessage } from './report.js';
import { runSequence, RunnerSetupError, type RunResult } from './runner.js';
import { parseSequence, type TaskSequence } from './sequence.js';
import { ServerContentProvider } from './server-content.js';
import { readState } from './state.js';
import type { TargetConfig } from './targets.js';

const DEFAULT_POLL_SECONDS = 60;

export interface AgentServiceOptions {
  server: string;
  dataDir: string;
  logFile: string;
  targets: TargetConfig[];
  clientSecret?: string;
  /** Interface for multicast content. */
  iface?: string;
  /** Facts overriding what the machine says (several agents on one test machine, or a VM without DMI). */
  identity?: Partial<Pick<MachineFacts, 'deviceName' | 'macAddresses' | 'serialNumber' | 'uuid'>>;
  agentVersion: string;
  signal: AbortSignal;
  /** Lines for the console. */
  say?: (line: string) => void;
  reporter?: Reporter;
}

export interface PolicyDeployment {
  id: number;
  name: string;
  purpose: 'available' | 'required';
  availableFrom: string | null;
  deadline: string | null;
  access: ContentAccess;
  state: 'waiting' | 'running' | 'succeeded' | 'failed' | 'restart-pending';
  sequence: Record<string, unknown>;
  sequenceDigest: string;
  variables: Record<string, string>;
}

interface Policy {
  deviceId: number;
  name: string;
  serverTime: string;
  pollIntervalSeconds: number;
  deployments: PolicyDeployment[];
}

interface DeviceFile {
  server: string;
  deviceId: number;
  name: string;
  credential: string;
}

/** What the service saved of a deployment when it started it: enough to continue without the server. */
interface LocalDeployment {
  id: number;
  name: string;
  access: ContentAccess;
  sequence: Record<string, unknown>;
  variables: Record<string, string>;
}

/** How a service run ended. */
export type ServiceOutcome = 'stopped' | 'failed' | 'restart-requested' | 'interrupted';

export class AgentService {
  readonly log: LogFile;
  private readonly outbox: Outbox;
  private readonly facts: MachineFacts;
  private device: DeviceFile | null = null;
  private api: ApiClient;
  private pollSeconds = DEFAULT_POLL_SECONDS;

  constructor(private readonly o: AgentServiceOptions) {
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    this.log = new LogFile(o.logFile);
    const machine = gatherMachineFacts();
    const id = o.identity ?? {};
    this.facts = {
      ...machine,
      deviceName: id.deviceName ?? machine.deviceName,
      macAddresses: id.macAddresses?.length ? id.macAddresses.map((m) => m.replace(/-/g, ':').toUpperCase()) : machine.macAddresses,
      serialNumber: id.serialNumber ?? machine.serialNumber,
      uuid: id.uuid?.toUpperCase() ?? machine.uuid,
    };
    this.api = new ApiClient({ server: o.server, clientSecret: o.clientSecret });
    this.outbox = new Outbox(join(o.dataDir, 'outbox.jsonl'), (batch) => this.sendStatus(batch), (line) => this.log.write(line));
  }

  private say(line: string): void {
    this.log.write(line);
    this.o.say?.(line);
  }

  private path(...parts: string[]): string {
    return join(this.o.dataDir, ...parts);
  }

  // ---- identity ---------------------------------------------------------------------------------------------

  private deviceHeaders(): Record<string, string> {
    return this.device ? { [DEVICE_CREDENTIAL_HEADER]: this.device.credential } : {};
  }

  private loadDevice(): void {
    try {
      const d = JSON.parse(readFileSync(this.path('device.json'), 'utf8')) as DeviceFile;
      // A credential is the server's: another server does not know it.
      if (d.server === this.api.base && typeof d.credential === 'string') this.device = d;
    } catch {
      this.device = null;
    }
  }

  async register(): Promise<DeviceFile> {
    const body = {
      name: this.facts.deviceName,
      macAddresses: this.facts.macAddresses,
      ...(this.facts.uuid ? { smbiosUuid: this.facts.uuid } : {}),
      ...(this.facts.serialNumber ? { serial: this.facts.serialNumber } : {}),
      agentVersion: this.o.agentVersion,
    };
    const r = await this.api.request<{ deviceId: number; name: string; credential: string; recognisedBy: string | null; pollIntervalSeconds: number }>('POST', '/api/client/register', body, this.o.signal);
    this.device = { server: this.api.base, deviceId: r.deviceId, name: r.name, credential: r.credential };
    writeFileSync(this.path('device.json'), `${JSON.stringify(this.device, null, 2)}\n`, { mode: 0o600 });
    this.pollSeconds = r.pollIntervalSeconds;
    this.say(`registered with ${this.api.base} as device ${r.deviceId} "${r.name}"${r.recognisedBy ? ` (recognised by ${r.recognisedBy === 'uuid' ? 'SMBIOS UUID' : 'MAC address'})` : ''}`);
    return this.device;
  }

  /** A device call; a credential the server no longer knows leads to one new registration. */
  private async deviceCall<T>(method: string, path: string, body: unknown): Promise<T> {
    if (!this.device) await this.register();
    const call = () =>
      this.api
        .send(path, { method, headers: this.api.headers({ 'content-type': 'application/json', ...this.deviceHeaders() }), body: JSON.stringify(body), signal: this.o.signal })
        .then((res) => res.json() as Promise<T>);
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      this.log.write(`the server does not know this device's credential (${err.message}); registering again`);
      await this.register();
      return call();
    }
  }

  private async sendStatus(batch: QueuedStatus[]): Promise<void> {
    let r: { stored: number; ignored: { id: string; reason: string }[] };
    try {
      r = await this.deviceCall('POST', '/api/client/status', { messages: batch });
    } catch (err) {
      if (err instanceof ApiError && err.status === 400) throw new RejectedBatch(err.message);
      throw err;
    }
    for (const i of r.ignored) this.log.write(`the server ignored status message ${i.id}: ${i.reason}`);
  }

  // ---- local deployment records -----------------------------------------------------------------------------

  private deploymentDir(id: number): string {
    return this.path('deployments', String(id));
  }

  private local(id: number): LocalDeployment | null {
    try {
      return JSON.parse(readFileSync(join(this.deploymentDir(id), 'sequence.json'), 'utf8')) as LocalDeployment;
    } catch {
      return null;
    }
  }

  private localStatus(id: number): string | null {
    try {
      return readState(join(this.deploymentDir(id), 'state.json'))?.status ?? null;
    } catch {
      return 'unreadable';
    }
  }

  /** Deployments started here and not finished (a restart or a crash interrupted them). */
  unfinished(): number[] {
    let names: string[] = [];
    try {
      names = readdirSync(this.path('deployments'));
    } catch {
      return [];
    }
    return names
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .filter((id) => this.local(id) && ['running', 'restart-pending'].includes(this.localStatus(id) ?? ''))
      .sort((a, b) => a - b);
  }

  private requested(): number[] {
    try {
      return readdirSync(this.path('requests')).filter((n) => /^\d+$/.test(n)).map(Number);
    } catch {
      return [];
    }
  }

  static request(dataDir: string, deploymentId: number): void {
    mkdirSync(join(dataDir, 'requests'), { recursive: true });
    writeFileSync(join(dataDir, 'requests', String(deploymentId)), `${new Date().toISOString()}\n`);
  }

  // ---- running ----------------------------------------------------------------------------------------------

  private reporter(): Reporter {
    const extra = this.o.reporter;
    return {
      report: (m: StatusMessage) => {
        this.outbox.report(m);
        return extra?.report(m);
      },
    };
  }

  /** Runs (or continues) one deployment with what was saved locally when it started. */
  async runDeployment(d: LocalDeployment): Promise<RunResult | null> {
    const dir = this.deploymentDir(d.id);
    mkdirSync(dir, { recursive: true });
    if (!this.local(d.id)) writeFileSync(join(dir, 'sequence.json'), `${JSON.stringify(d, null, 2)}\n`, { mode: 0o600 });
    const saved = this.local(d.id)!;
    this.say(`deployment ${d.id} "${d.name}": ${this.localStatus(d.id) ? 'continuing' : 'starting'}`);
    let sequence: TaskSequence;
    let result: RunResult;
    try {
      sequence = parseSequence(saved.sequence);
      result = await runSequence({
        sequence,
        statePath: join(dir, 'state.json'),
        logPath: this.o.logFile,
        workDir: join(dir, 'work'),
        targets: this.o.targets,
        content: new ServerContentProvider({
          server: this.o.server,
          clientSecret: this.o.clientSecret,
          access: saved.access,
          iface: this.o.iface,
          clientName: this.facts.deviceName,
          mac: this.facts.macAddresses[0],
          uuid: this.facts.uuid ?? undefined,
        }),
        reporter: this.reporter(),
        deploymentId: String(d.id),
        variables: saved.variables,
        machine: this.facts,
        signal: this.o.signal,
      });
    } catch (err) {
      // Nothing ran (missing parameter, a state file of another document …): the server hears why, and the
      // deployment is recorded here as failed so that it is not tried again and again.
      const message = err instanceof RunnerSetupError ? err.message : `cannot run the task sequence: ${(err as Error).message}`;
      this.say(`deployment ${d.id}: ${message}`);
      const doc = saved.sequence as { name?: string; version?: number };
      this.outbox.report({ time: new Date().toISOString(), kind: 'sequence-failed', deploymentId: String(d.id), sequence: { name: String(doc.name ?? '?'), version: Number(doc.version ?? 0) }, message, reason: 'invalid-value' });
      writeFileSync(join(dir, 'setup-failed'), `${message}\n`);
      return null;
    }
    if (result.status === 'succeeded' || result.status === 'failed') {
      rmSync(join(dir, 'work'), { recursive: true, force: true });
      this.say(`deployment ${d.id}: ${result.status}${result.failure ? ` at ${result.failure.step.path} "${result.failure.step.name}" (${result.failure.reason}): ${result.failure.message}` : ''}`);
    }
    return result;
  }

  private isDone(id: number): boolean {
    const status = this.localStatus(id);
    return status === 'succeeded' || status === 'failed' || existsSync(join(this.deploymentDir(id), 'setup-failed'));
  }

  private async poll(status: 'idle' | 'running' | 'restart-pending'): Promise<Policy> {
    const policy = await this.deviceCall<Policy>('POST', '/api/client/policy', { status, agentVersion: this.o.agentVersion });
    this.pollSeconds = policy.pollIntervalSeconds;
    return policy;
  }

  /** The deployments of the policy that are due now: required past their deadline, requested ones. */
  private due(policy: Policy, requested: number[]): PolicyDeployment[] {
    const now = Date.now();
    return policy.deployments.filter(
      (d) =>
        !this.isDone(d.id) &&
        d.state !== 'succeeded' &&
        d.state !== 'failed' &&
        (requested.includes(d.id) || (d.purpose === 'required' && d.deadline !== null && Date.parse(d.deadline) <= now)),
    );
  }

  private toLocal(d: PolicyDeployment): LocalDeployment {
    return { id: d.id, name: d.name, access: d.access, sequence: d.sequence, variables: d.variables };
  }

  /** One deployment to its end (or a restart / interruption); the outcome for the service loop. */
  private async runToEnd(d: LocalDeployment): Promise<ServiceOutcome | null> {
    const result = await this.runDeployment(d);
    rmSync(this.path('requests', String(d.id)), { force: true });
    if (result?.status === 'restart-requested') return 'restart-requested';
    if (result?.status === 'interrupted') return 'interrupted';
    return result?.status === 'succeeded' ? null : 'failed';
  }

  /**
   * Only `deploymentId` (for `fleetcast agent run --deployment`), or the service loop: continue what a
   * restart interrupted, then poll, run what is due, sleep until the next poll or deadline.
   */
  async run(only?: number): Promise<ServiceOutcome> {
    this.loadDevice();
    try {
      for (const id of only === undefined ? this.unfinished() : []) {
        const outcome = await this.runToEnd(this.local(id)!);
        if (outcome === 'restart-requested' || outcome === 'interrupted') return this.finish(outcome);
      }
      for (;;) {
        if (this.o.signal.aborted) return this.finish('stopped');
        let policy: Policy | null = null;
        try {
          policy = await this.poll(only === undefined && this.unfinished().length ? 'running' : 'idle');
        } catch (err) {
          if (this.o.signal.aborted) return this.finish('stopped');
          this.say(`cannot get policy: ${(err as Error).message}; trying again`);
          if (only !== undefined) throw err;
        }
        if (policy) {
          if (only !== undefined) {
            const d = policy.deployments.find((x) => x.id === only);
            if (!d) throw new Error(`deployment ${only} is not offered to this device (not a member of its collection, disabled, or not available yet)`);
            if (this.isDone(only)) {
              this.say(`deployment ${only} already ran on this machine (${this.localStatus(only) ?? 'failed to start'})`);
              return this.finish('stopped');
            }
            return this.finish((await this.runToEnd(this.local(only) ?? this.toLocal(d))) ?? 'stopped');
          }
          for (const id of this.requested().filter((r) => this.isDone(r) || !policy!.deployments.some((d) => d.id === r))) {
            this.say(`request to run deployment ${id} dropped: ${this.isDone(id) ? 'it already ran here' : 'it is not offered to this device'}`);
            rmSync(this.path('requests', String(id)), { force: true });
          }
          for (const d of this.due(policy, this.requested())) {
            const outcome = await this.runToEnd(this.local(d.id) ?? this.toLocal(d));
            if (outcome === 'restart-requested' || outcome === 'interrupted') return this.finish(outcome);
          }
        }
        await this.waitForNext(policy);
      }
    } finally {
      this.outbox.close();
    }
  }

  /** Sleeps until the next poll (with jitter), the next deadline, a run request, or a stop. */
  private async waitForNext(policy: Policy | null): Promise<void> {
    const jitter = 0.8 + Math.random() * 0.4;
    let wakeAt = Date.now() + (policy ? this.pollSeconds : Math.min(this.pollSeconds, 15)) * 1000 * jitter;
    for (const d of policy?.deployments ?? []) {
      if (d.purpose === 'required' && d.deadline && !this.isDone(d.id)) {
        const at = Date.parse(d.deadline);
        if (at > Date.now()) wakeAt = Math.min(wakeAt, at);
      }
    }
    const requestsBefore = this.requested().length;
    while (Date.now() < wakeAt && !this.o.signal.aborted) {
      if (this.requested().length > requestsBefore) return;
      await sleep(Math.min(1000, wakeAt - Date.now()), undefined, { signal: this.o.signal }).catch(() => undefined);
    }
  }

  private async finish(outcome: ServiceOutcome): Promise<ServiceOutcome> {
    const left = await this.outbox.drain(outcome === 'restart-requested' ? 30_000 : 5000);
    if (!left) this.say(`${this.outbox.pending().length} status message(s) stay queued in ${this.outbox.path}; they are sent when the agent runs again`);
    return outcome;
  }
}

/** Refuses a second service on one data folder (two would run the same deployment twice). */
export function lockDataDir(dataDir: string): { release: () => void; holder: number | null } {
  const path = join(dataDir, 'agent.lock');
  mkdirSync(dataDir, { recursive: true });
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (pid && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        return { release: () => {}, holder: pid };
      } catch {
        /* stale lock of a process that is gone */
      }
    }
  } catch {
    /* no lock */
  }
  writeFileSync(path, `${process.pid}\n`);
  return {
    holder: null,
    release: () => {
      try {
        if (Number(readFileSync(path, 'utf8').trim()) === process.pid) rmSync(path, { force: true });
      } catch {
        /* already gone */
      }
    },
  };
}

export function lockHolder(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(join(dataDir, 'agent.lock'), 'utf8').trim());
    if (!pid) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}
