// `fleetcast agent …`: run a task sequence on this machine from a local file and local content (standalone
// media), and validate sequence documents. The server-driven agent (policy polling) plugs into the same
// runner: it supplies the sequence, deployment variables, a server ContentProvider and a server Reporter.
import { Command, InvalidArgumentError } from 'commander';
import type { SingleBar } from 'cli-progress';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
// Types only: the agent (disk tools, content formats, the runner) is loaded when an agent command runs, so
// that every other command starts without it.
import type { Reporter, RunResult, StatusMessage, TaskSequence } from '../agent/index.js';
import { progressBar } from './shared.js';

/** Exit codes of `fleetcast agent run-sequence` and `validate` (README "Task sequences"). */
export const AgentExit = {
  ok: 0,
  usage: 1,
  stepFailed: 2,
  restartRequested: 3,
  interrupted: 130,
} as const;

function say(message: string): void {
  process.stderr.write(`fleetcast: ${message}\n`);
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function readSequenceFile(file: string, parseSequenceText: (text: string) => TaskSequence): TaskSequence {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${file}: ${(err as Error).message}`);
  }
  return parseSequenceText(text);
}

/** Step-by-step lines on stderr, and a progress bar for long phases when stderr is a terminal. */
export class ConsoleReporter implements Reporter {
  private bar: SingleBar | null = null;
  private barKey = '';

  constructor(private readonly quiet: boolean) {}

  private stopBar(): void {
    this.bar?.stop();
    this.bar = null;
    this.barKey = '';
  }

  report(m: StatusMessage): void {
    if (this.quiet) return;
    const ordinal = m.details && typeof m.details.ordinal === 'number' ? `[${m.details.ordinal}/${m.details.total}] ` : '';
    switch (m.kind) {
      case 'step-progress': {
        const p = m.progress;
        if (!p || p.total === null || !process.stderr.isTTY) return;
        const key = `${m.step?.path}:${p.phase}`;
        if (key !== this.barKey) {
          this.stopBar();
          this.bar = progressBar(true, `  ${p.phase} |{bar}| {percentage}% ${p.unit === 'bytes' ? '{value}/{total}' : ''}`);
          this.bar?.start(p.total, p.done);
          this.barKey = key;
        } else this.bar?.update(p.done);
        return;
      }
      case 'step-started':
        this.stopBar();
        say(m.step?.type === 'group' ? `${m.message}` : `${ordinal}${m.step?.name} (${m.step?.type})`);
        return;
      case 'step-log':
        this.stopBar();
        say(`    ${m.message}`);
        return;
      case 'step-succeeded':
        this.stopBar();
        if (m.step?.type !== 'group') say(`    done: ${m.step?.name}`);
        return;
      case 'step-skipped':
        say(`skipped ${m.step?.name} (${m.step?.path}): ${m.message}`);
        return;
      case 'step-failed':
        this.stopBar();
        say(`FAILED ${m.step?.name} (${m.step?.path}) [${m.reason}]${m.continued ? ' — continuing (continueOnError)' : ''}: ${m.message}`);
        return;
      default:
        this.stopBar();
        say(m.message);
    }
  }
}

function exitCodeOf(result: RunResult): number {
  switch (result.status) {
    case 'succeeded':
      return AgentExit.ok;
    case 'failed':
      return AgentExit.stepFailed;
    case 'restart-requested':
      return AgentExit.restartRequested;
    case 'interrupted':
      return AgentExit.interrupted;
  }
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'sequence';
}

export function registerAgentCommands(program: Command): void {
  const agent = program.command('agent').description('run task sequences on this machine (partition, apply images, settings, commands)');

  agent
    .command('validate')
    .description('check a task sequence document and list every problem with its path')
    .argument('<file>', 'task sequence JSON')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (file: string, o: { json?: boolean }) => {
      const { validateSequence } = await import('../agent/index.js');
      let input: unknown;
      try {
        input = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        const message = `cannot read ${file} as JSON: ${(err as Error).message}`;
        if (o.json) process.stdout.write(`${JSON.stringify({ valid: false, errors: [{ path: '', message }], warnings: [] }, null, 2)}\n`);
        else say(message);
        process.exitCode = AgentExit.usage;
        return;
      }
      const result = validateSequence(input);
      const valid = result.sequence !== null;
      if (o.json) {
        const s = result.sequence;
        process.stdout.write(`${JSON.stringify({ valid, ...(s ? { name: s.name, version: s.version } : {}), errors: result.errors, warnings: result.warnings }, null, 2)}\n`);
      } else {
        for (const e of result.errors) say(`error: ${e.path || '/'}: ${e.message}`);
        for (const w of result.warnings) say(`warning: ${w.path || '/'}: ${w.message}`);
        if (valid) say(`${file}: valid ("${result.sequence!.name}" version ${result.sequence!.version})`);
        else say(`${file}: ${result.errors.length} error(s)`);
      }
      process.exitCode = valid ? AgentExit.ok : AgentExit.usage;
    });

  agent
    .command('run-sequence')
    .description('run a task sequence here, resuming from its state file if one exists')
    .argument('<file>', 'task sequence JSON')
    .option('-t, --target <device|image|NAME=PATH>', 'a disk destructive steps may write to (repeatable; unnamed ones are disk0, disk1 …); a regular file is attached as a loop device', collect, [])
    .option('--config <file>', 'agent config JSON with "targets" (and "dataDir", "logFile")')
    .option('--content-dir <dir>', 'folder with images and their manifest.json (standalone media)')
    .option('--var <NAME=VALUE>', 'deployment variable (repeatable)', collect, [])
    .option('--deployment-id <id>', 'value of %_DeploymentID%', 'local')
    .option('--state <file>', 'resumable state file (default <data dir>/state-<sequence>.json)')
    .option('--log <file>', 'log file (default <data dir>/agent.log)')
    .option('--data-dir <dir>', 'state, scratch and content cache (default ./fleetcast-agent or $FLEETCAST_AGENT_DIR)')
    .option('--json', 'print a JSON summary on stdout when done')
    .option('-q, --quiet', 'no step output on stderr')
    .action(async (file: string, o) => {
      const { checkTargetConfigs, defaultAgentConfig, DirectoryContentProvider, loadAgentConfig, parseAssignment, parseSequenceText, parseTargetOption, runSequence, RunnerSetupError, SequenceValidationError, StepFailure } =
        await import('../agent/index.js');
      let sequence: TaskSequence;
      try {
        sequence = readSequenceFile(file, parseSequenceText);
      } catch (err) {
        if (err instanceof SequenceValidationError) say(err.message);
        else say((err as Error).message);
        process.exitCode = AgentExit.usage;
        return;
      }
      let config;
      try {
        config = o.config ? loadAgentConfig(o.config) : defaultAgentConfig();
        if (o.dataDir) {
          config.dataDir = resolve(o.dataDir);
          if (!o.config) config.logFile = join(config.dataDir, 'agent.log');
        }
        const fromFlags = (o.target as string[]).map((t, i) => parseTargetOption(t, config!.targets.length + i));
        config.targets = [...config.targets, ...fromFlags];
        checkTargetConfigs(config.targets);
      } catch (err) {
        say((err as Error).message);
        process.exitCode = AgentExit.usage;
        return;
      }
      const variables: Record<string, string> = {};
      try {
        for (const v of o.var as string[]) {
          const [k, value] = parseAssignment(v);
          variables[k] = value;
        }
      } catch (err) {
        say((err as Error).message);
        process.exitCode = AgentExit.usage;
        return;
      }
      const quiet = Boolean(o.quiet || o.json);
      const statePath = resolve(o.state ?? join(config.dataDir, `state-${slug(sequence.name)}.json`));
      const logPath = resolve(o.log ?? config.logFile);
      const controller = new AbortController();
      const onSignal = () => {
        if (controller.signal.aborted) process.exit(AgentExit.interrupted);
        say('interrupting: the current step stops; run the same command again to continue');
        controller.abort();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const content = o.contentDir
        ? new DirectoryContentProvider(o.contentDir)
        : {
            fetch: async () => {
              throw new StepFailure('content-unavailable', 'no content source: run with --content-dir DIR (a folder with manifest.json)');
            },
          };
      let result: RunResult;
      try {
        result = await runSequence({
          sequence,
          statePath,
          logPath,
          workDir: join(config.dataDir, 'work'),
          targets: config.targets,
          content,
          reporter: new ConsoleReporter(quiet),
          deploymentId: o.deploymentId,
          variables,
          signal: controller.signal,
        });
      } catch (err) {
        say(err instanceof RunnerSetupError ? err.message : `cannot run the sequence: ${(err as Error).message}`);
        process.exitCode = AgentExit.usage;
        return;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      const code = exitCodeOf(result);
      if (o.json) process.stdout.write(`${JSON.stringify({ ...result, exitCode: code, statePath, logPath }, null, 2)}\n`);
      if (!quiet) {
        if (result.alreadyFinished) say(`this run already ${result.status} (state file ${statePath}); move the state file away to run the sequence again`);
        if (result.status === 'restart-requested') say(`restart requested: restart the machine (or just run the same command again) to continue; state in ${statePath}`);
        if (result.alreadyFinished && result.failure) say(`failed at ${result.failure.step.path} "${result.failure.step.name}" (${result.failure.reason}): ${result.failure.message}`);
        if (result.status === 'interrupted') say(`interrupted; run the same command again to continue (state in ${statePath})`);
        if (result.status === 'succeeded' && !result.alreadyFinished) say(`"${sequence.name}" finished; log in ${logPath}`);
      }
      process.exitCode = code;
    });
}
