// The step engine: runs a validated task sequence on this machine, step by step, persisting a resumable
// state after every step, reporting every step to a Reporter and to the local log file.
//
// Resume rules: completed steps are never run again; the step that was running when the agent died runs
// again from its beginning; after a restart step the run continues at the step after it. Groups whose
// condition was true are entered again on resume without evaluating the condition a second time.
import { mkdirSync } from 'node:fs';
import { evaluateCondition, describeCondition } from './conditions.js';
import type { ContentProvider } from './content.js';
import { gatherMachineFacts, machineVariables, type MachineFacts } from './machine.js';
import { LogFile, StepFailure, type FailureReason, type Reporter, type StatusKind, type StatusMessage, type StepInfo } from './report.js';
import { groupSteps, sequenceDigest, type Step, type TaskSequence } from './sequence.js';
import { readState, StateFileError, writeState, type RunState, type StepRecord } from './state.js';
import type { StepContext } from './steps/context.js';
import { applyImage } from './steps/apply-image.js';
import { applySettings } from './steps/apply-settings.js';
import { partitionDisk } from './steps/partition-disk.js';
import { runCommand } from './steps/run-command.js';
import { Targets, type TargetConfig } from './targets.js';
import { isBuiltinName, UndefinedVariableError, Variables } from './variables.js';

export interface RunOptions {
  sequence: TaskSequence;
  /** The resumable state file: a run with an existing state file continues it. */
  statePath: string;
  logPath: string;
  /** Scratch and content cache, kept across restarts. */
  workDir: string;
  /** Disks this machine allows destructive steps on; none → such steps are refused. */
  targets: TargetConfig[];
  content: ContentProvider;
  reporter?: Reporter;
  /** "local" for runs from the command line. */
  deploymentId?: string;
  /** Deployment and collection variables; they override the sequence's defaults (first run only). */
  variables?: Record<string, string>;
  machine?: MachineFacts;
  signal?: AbortSignal;
  /** Minimum time between progress reports of one step (default 1 s). */
  progressIntervalMs?: number;
}

export type RunStatus = 'succeeded' | 'failed' | 'restart-requested' | 'interrupted';

export interface StepSummary extends StepInfo {
  outcome: StepRecord['outcome'] | 'not-run';
  continued?: boolean;
  reason?: FailureReason;
  message?: string;
}

export interface RunResult {
  status: RunStatus;
  /** This run continued an earlier one from the state file. */
  resumed: boolean;
  /** The state file recorded a finished run: nothing was run again. */
  alreadyFinished: boolean;
  failure?: { step: StepInfo; reason: FailureReason; message: string };
  steps: StepSummary[];
  variables: Record<string, string>;
}

/** A run that cannot start: a state file of another sequence, missing parameters … (nothing was changed). */
export class RunnerSetupError extends Error {}

type Flow = 'ok' | 'failed' | 'restart' | 'interrupted';

export async function runSequence(opts: RunOptions): Promise<RunResult> {
  return new SequenceRun(opts).run();
}

class SequenceRun {
  private readonly sequence: TaskSequence;
  private readonly log: LogFile;
  private readonly signal: AbortSignal;
  private readonly digest: string;
  private readonly ordinals = new Map<string, number>();
  private state!: RunState;
  private vars!: Variables;
  private targets!: Targets;
  private failure: RunResult['failure'];
  private lastProgress = new Map<string, number>();

  constructor(private readonly opts: RunOptions) {
    this.sequence = opts.sequence;
    this.log = new LogFile(opts.logPath);
    this.signal = opts.signal ?? new AbortController().signal;
    this.digest = sequenceDigest(opts.sequence);
    this.numberLeaves(this.sequence.steps, '/steps');
  }

  private numberLeaves(steps: Step[], path: string): void {
    steps.forEach((s, i) => {
      const p = `${path}/${i}`;
      if (s.type === 'group') this.numberLeaves(groupSteps(this.sequence, s), `${p}/steps`);
      else this.ordinals.set(p, this.ordinals.size + 1);
    });
  }

  private info(step: Step, path: string): StepInfo {
    const name = step.name ?? (step.type === 'group' && step.use ? (this.sequence.groups[step.use]?.name ?? step.use) : step.type);
    return { path, id: step.id ?? path, name, type: step.type };
  }

  private async emit(kind: StatusKind, message: string, extra: Partial<StatusMessage> = {}): Promise<void> {
    const m: StatusMessage = { time: new Date().toISOString(), kind, deploymentId: this.state.deploymentId, sequence: { name: this.sequence.name, version: this.sequence.version }, message, ...extra };
    this.log.status(m);
    if (!this.opts.reporter) return;
    try {
      await this.opts.reporter.report(m);
    } catch (err) {
      // A reporter that cannot deliver (server unreachable) must not stop the imaging; the log keeps it all.
      this.log.write(`reporter failed (${kind}): ${(err as Error).message}`);
    }
  }

  private save(): void {
    this.state.variables = this.vars.toObject((n) => !isBuiltinName(n));
    writeState(this.opts.statePath, this.state);
  }

  private loadOrCreateState(): { resumed: boolean } {
    let existing: RunState | null;
    try {
      existing = readState(this.opts.statePath);
    } catch (err) {
      if (err instanceof StateFileError) throw new RunnerSetupError(err.message);
      throw err;
    }
    if (existing) {
      if (existing.sequence.digest !== this.digest) {
        throw new RunnerSetupError(
          `the state file ${this.opts.statePath} belongs to a run of "${existing.sequence.name}" version ${existing.sequence.version} (a different document than "${this.sequence.name}" version ${this.sequence.version}); finish that run with the same document, or move the state file away to start this one`,
        );
      }
      this.state = existing;
      return { resumed: true };
    }
    const given = this.opts.variables ?? {};
    for (const name of Object.keys(given)) if (isBuiltinName(name)) throw new RunnerSetupError(`variable ${name} is reserved: names starting with _ are set by the agent`);
    const initial = new Variables({ ...this.sequence.variables });
    for (const [k, v] of Object.entries(given)) initial.set(k, v);
    const missing = this.sequence.parameters.filter((p) => !initial.has(p));
    if (missing.length) throw new RunnerSetupError(`the sequence needs parameter(s) ${missing.join(', ')} from the deployment (pass ${missing.map((m) => `--var ${m}=...`).join(' ')})`);
    const now = new Date().toISOString();
    this.state = {
      stateVersion: 1,
      sequence: { name: this.sequence.name, version: this.sequence.version, digest: this.digest },
      deploymentId: this.opts.deploymentId ?? 'local',
      status: 'running',
      startedAt: now,
      updatedAt: now,
      current: null,
      variables: initial.toObject(),
      steps: {},
      enteredGroups: [],
      partitionOutputs: {},
      restartStep: null,
      restarts: 0,
    };
    return { resumed: false };
  }

  async run(): Promise<RunResult> {
    try {
      this.targets = new Targets(this.opts.targets, (line) => this.log.write(line));
    } catch (err) {
      throw new RunnerSetupError((err as Error).message);
    }
    mkdirSync(this.opts.workDir, { recursive: true });
    const { resumed } = this.loadOrCreateState();
    if (this.state.status === 'succeeded' || this.state.status === 'failed') {
      this.vars = new Variables(this.state.variables);
      this.log.write(`state file ${this.opts.statePath}: the run already ${this.state.status} at ${this.state.updatedAt}; nothing to do`);
      return this.result(this.state.status, true, true);
    }
    const facts = this.opts.machine ?? gatherMachineFacts();
    this.vars = new Variables({
      ...machineVariables(facts),
      _DeploymentID: this.state.deploymentId,
      _SequenceName: this.sequence.name,
      _SequenceVersion: String(this.sequence.version),
    });
    for (const [k, v] of Object.entries(this.state.variables)) this.vars.set(k, v);

    try {
      if (!resumed) await this.emit('sequence-started', `running "${this.sequence.name}" version ${this.sequence.version} (${this.ordinals.size} steps) as deployment ${this.state.deploymentId}`);
      else if (this.state.status === 'restart-pending' && this.state.restartStep) {
        const path = this.state.restartStep;
        this.state.steps[path] = { outcome: 'succeeded', finishedAt: new Date().toISOString() };
        this.state.restarts++;
        this.state.restartStep = null;
        this.state.status = 'running';
        await this.emit('sequence-resumed', `resumed after the restart requested by ${path}`);
      } else {
        await this.emit('sequence-resumed', this.state.current ? `resumed: step ${this.state.current} was interrupted and runs again` : 'resumed');
      }
      await this.refreshPartitionOutputs();
      this.save();

      const flow = await this.runSteps(this.sequence.steps, '/steps');
      if (flow === 'interrupted') {
        this.save();
        this.log.write('interrupted; the state file lets the next run continue');
        return this.result('interrupted', resumed, false);
      }
      if (flow === 'restart') return this.result('restart-requested', resumed, false);
      this.state.status = flow === 'ok' ? 'succeeded' : 'failed';
      this.state.current = null;
      if (this.failure) this.state.failure = { step: this.failure.step.path, reason: this.failure.reason, message: this.failure.message };
      this.save();
      if (flow === 'ok') await this.emit('sequence-succeeded', `"${this.sequence.name}" finished`);
      else await this.emit('sequence-failed', `"${this.sequence.name}" failed at ${this.failure?.step.path} (${this.failure?.step.name}): ${this.failure?.reason}`, this.failure ? { reason: this.failure.reason, step: this.failure.step } : {});
      return this.result(this.state.status, resumed, false);
    } finally {
      await this.targets.detach();
    }
  }

  /** Output variables of partitions name devices; loop devices get new names each time a file is attached. */
  private async refreshPartitionOutputs(): Promise<void> {
    for (const [variable, { target, number }] of Object.entries(this.state.partitionOutputs)) {
      const path = await this.targets.partitionPath(target, number);
      if (path && path !== this.vars.get(variable)) {
        this.log.write(`%${variable}% is now ${path} (partition ${number} of ${target})`);
        this.vars.set(variable, path);
      }
    }
  }

  private async runSteps(steps: Step[], path: string): Promise<Flow> {
    for (const [i, step] of steps.entries()) {
      const flow = await this.runStep(step, `${path}/${i}`);
      if (flow !== 'ok') return flow;
    }
    return 'ok';
  }

  private record(path: string, record: Omit<StepRecord, 'finishedAt'>): void {
    this.state.steps[path] = { ...record, finishedAt: new Date().toISOString() };
  }

  private async runStep(step: Step, path: string): Promise<Flow> {
    if (this.state.steps[path]) return 'ok';
    if (this.signal.aborted) return 'interrupted';
    const info = this.info(step, path);
    if (step.disabled) {
      this.record(path, { outcome: 'skipped', message: 'disabled' });
      this.save();
      await this.emit('step-skipped', 'disabled', { step: info });
      return 'ok';
    }
    const entered = step.type === 'group' && this.state.enteredGroups.includes(path);
    if (!entered && step.condition && !evaluateCondition(step.condition, (n) => this.vars.get(n))) {
      const message = `condition ${describeCondition(step.condition)} is false`;
      this.record(path, { outcome: 'skipped', message });
      this.save();
      await this.emit('step-skipped', message, { step: info });
      return 'ok';
    }
    if (step.type === 'group') return this.runGroup(step, info);

    const ordinal = this.ordinals.get(path)!;
    this.state.current = path;
    this.save();
    this.vars.set('_StepName', info.name);
    this.vars.set('_StepID', info.id);
    await this.emit('step-started', `step ${ordinal} of ${this.ordinals.size}: ${info.name}`, { step: info, details: { ordinal, total: this.ordinals.size } });

    let restartMessage: string | undefined;
    try {
      if (step.type === 'restart') restartMessage = step.message !== undefined ? this.vars.substitute(step.message, `${path}/message`) : 'restart requested by the task sequence';
      else await this.execute(step, path);
    } catch (err) {
      const failure = asFailure(err);
      if (failure.reason === 'interrupted' || this.signal.aborted) {
        this.log.write(`step ${path} interrupted: ${failure.message}`);
        return 'interrupted';
      }
      this.vars.set('_LastStepSucceeded', 'false');
      const continued = step.continueOnError === true;
      this.record(path, { outcome: 'failed', reason: failure.reason, message: failure.message, ...(continued ? { continued } : {}) });
      this.state.current = null;
      this.save();
      await this.emit('step-failed', failure.message, { step: info, reason: failure.reason, continued, ...(typeof failure.details.exitCode === 'number' ? { exitCode: failure.details.exitCode } : {}), details: failure.details });
      if (continued) return 'ok';
      this.failure = { step: info, reason: failure.reason, message: failure.message };
      return 'failed';
    }
    if (restartMessage !== undefined) {
      // Recorded as done only when the run resumes: the restart itself is what this step does.
      this.state.status = 'restart-pending';
      this.state.restartStep = path;
      this.state.current = null;
      this.save();
      await this.emit('restart-requested', restartMessage, { step: info });
      return 'restart';
    }
    this.vars.set('_LastStepSucceeded', 'true');
    this.record(path, { outcome: 'succeeded' });
    this.state.current = null;
    this.save();
    await this.emit('step-succeeded', `${info.name} succeeded`, { step: info });
    return 'ok';
  }

  private async runGroup(step: Step & { type: 'group' }, info: StepInfo): Promise<Flow> {
    if (!this.state.enteredGroups.includes(info.path)) {
      this.state.enteredGroups.push(info.path);
      this.save();
      await this.emit('step-started', `group ${info.name}`, { step: info });
    }
    const flow = await this.runSteps(groupSteps(this.sequence, step), `${info.path}/steps`);
    if (flow === 'restart' || flow === 'interrupted') return flow;
    if (flow === 'failed') {
      const continued = step.continueOnError === true;
      const inner = this.failure!;
      this.record(info.path, { outcome: 'failed', reason: inner.reason, message: `${inner.step.name}: ${inner.message}`, ...(continued ? { continued } : {}) });
      this.save();
      await this.emit('step-failed', `group failed at ${inner.step.path} (${inner.step.name})`, { step: info, reason: inner.reason, continued });
      if (!continued) return 'failed';
      this.failure = undefined;
      this.vars.set('_LastStepSucceeded', 'false');
      return 'ok';
    }
    this.record(info.path, { outcome: 'succeeded' });
    this.save();
    await this.emit('step-succeeded', `group ${info.name} succeeded`, { step: info });
    return 'ok';
  }

  private context(path: string, info: () => StepInfo): StepContext {
    return {
      path,
      variables: this.vars,
      targets: this.targets,
      content: this.opts.content,
      workDir: this.opts.workDir,
      signal: this.signal,
      text: (value, field) => this.vars.substitute(value, `${path}/${field}`),
      log: (line) => this.log.write(`[${path}] ${line}`),
      note: (message) => void this.emit('step-log', message, { step: info() }),
      progress: (phase, done, total, unit) => {
        const now = Date.now();
        const key = `${path}:${phase}`;
        const finished = total !== null && done >= total;
        if (!finished && now - (this.lastProgress.get(key) ?? 0) < (this.opts.progressIntervalMs ?? 1000)) return;
        this.lastProgress.set(key, now);
        void this.emit('step-progress', `${phase} ${done}${total !== null ? `/${total}` : ''} ${unit}`, { step: info(), progress: { phase, done, total, unit } });
      },
      recordPartition: (variable, target, number) => {
        this.state.partitionOutputs[variable] = { target, number };
      },
    };
  }

  private async execute(step: Step, path: string): Promise<void> {
    const ctx = this.context(path, () => this.info(step, path));
    switch (step.type) {
      case 'partition-disk':
        return partitionDisk(step, ctx);
      case 'apply-image':
        return applyImage(step, ctx);
      case 'apply-settings':
        return applySettings(step, ctx);
      case 'run-command':
        return runCommand(step, ctx);
      case 'set-variable':
        this.vars.set(step.variable, ctx.text(step.value, 'value'));
        ctx.log(`%${step.variable}% set`);
        return;
      case 'restart':
      case 'group':
        throw new Error(`${step.type} is handled by the runner`);
    }
  }

  private result(status: RunStatus, resumed: boolean, alreadyFinished: boolean): RunResult {
    const steps: StepSummary[] = [];
    const walk = (list: Step[], path: string) =>
      list.forEach((s, i) => {
        const p = `${path}/${i}`;
        const rec = this.state.steps[p];
        steps.push({ ...this.info(s, p), outcome: rec?.outcome ?? 'not-run', ...(rec?.continued ? { continued: true } : {}), ...(rec?.reason ? { reason: rec.reason } : {}), ...(rec?.message ? { message: rec.message } : {}) });
        if (s.type === 'group') walk(groupSteps(this.sequence, s), `${p}/steps`);
      });
    walk(this.sequence.steps, '/steps');
    let failure = this.failure;
    if (!failure && this.state.failure) {
      const step = steps.find((s) => s.path === this.state.failure!.step);
      if (step) failure = { step: { path: step.path, id: step.id, name: step.name, type: step.type }, reason: this.state.failure.reason, message: this.state.failure.message };
    }
    return { status, resumed, alreadyFinished, ...(failure && status === 'failed' ? { failure } : {}), steps, variables: this.vars.toObject((n) => !isBuiltinName(n)) };
  }
}

function asFailure(err: unknown): StepFailure {
  if (err instanceof StepFailure) return err;
  if (err instanceof UndefinedVariableError) return new StepFailure('undefined-variable', err.message, { variable: err.variable });
  const e = err as NodeJS.ErrnoException;
  return new StepFailure('io', e?.message ?? String(err));
}
