// run-command: a command line with a timeout, accepted exit codes, working folder and environment.
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { StepFailure } from '../report.js';
import type { RunCommandStep } from '../sequence.js';
import type { StepContext } from './context.js';

/** After SIGTERM, how long a command's process group gets to exit before SIGKILL. */
const KILL_GRACE_MS = 5000;
/** Output lines kept for the failure message. */
const TAIL_LINES = 15;

export async function runCommand(step: RunCommandStep, ctx: StepContext): Promise<void> {
  const argv = typeof step.command === 'string' ? ['/bin/sh', '-c', ctx.text(step.command, 'command')] : step.command.map((a, i) => ctx.text(a, `command/${i}`));
  const cwd = step.workingDirectory !== undefined ? ctx.text(step.workingDirectory, 'workingDirectory') : undefined;
  if (cwd !== undefined && !statSync(cwd, { throwIfNoEntry: false })?.isDirectory()) throw new StepFailure('invalid-value', `working directory ${cwd} does not exist`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(step.environment ?? {})) env[k] = ctx.text(v, `environment/${k}`);
  const shown = typeof step.command === 'string' ? argv[2]! : argv.join(' ');
  ctx.log(`running: ${shown}${cwd ? ` (in ${cwd})` : ''}`);

  const tail: string[] = [];
  const keep = (prefix: string) => {
    let partial = '';
    return (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        ctx.log(`${prefix} ${line}`);
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
      }
    };
  };

  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean; error?: NodeJS.ErrnoException }>((resolve) => {
    // Its own process group, so a timeout or an interrupt stops everything the command started.
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      if (child.pid === undefined || child.exitCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      killTimer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, KILL_GRACE_MS);
    };
    const timer = step.timeoutSeconds !== undefined ? setTimeout(() => ((timedOut = true), stop()), step.timeoutSeconds * 1000) : undefined;
    ctx.signal.addEventListener('abort', stop, { once: true });
    child.stdout.on('data', keep('|'));
    child.stderr.on('data', keep('!'));
    const finish = (r: { code: number | null; signal: NodeJS.Signals | null; error?: NodeJS.ErrnoException }) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      ctx.signal.removeEventListener('abort', stop);
      resolve({ ...r, timedOut });
    };
    child.on('error', (error: NodeJS.ErrnoException) => finish({ code: null, signal: null, error }));
    child.on('close', (code, signal) => finish({ code, signal }));
  });

  const output = tail.length ? `; last output:\n${tail.join('\n')}` : '';
  if (result.error) {
    throw new StepFailure(result.error.code === 'ENOENT' ? 'tool-missing' : 'io', `cannot run ${argv[0]}: ${result.error.code === 'ENOENT' ? 'command not found' : result.error.message}`);
  }
  if (ctx.signal.aborted) throw new StepFailure('interrupted', 'command stopped: the run was interrupted');
  if (result.timedOut) throw new StepFailure('timeout', `timeout: the command did not finish within ${step.timeoutSeconds} s and was stopped${output}`, { timeoutSeconds: step.timeoutSeconds });
  if (result.code === null) throw new StepFailure('signal', `the command was killed by signal ${result.signal}${output}`, { signal: result.signal });
  ctx.variables.set('_LastExitCode', String(result.code));
  if (!step.successCodes.includes(result.code)) {
    throw new StepFailure('exit-code', `command exit code ${result.code} (not in success codes ${step.successCodes.join(', ')})${output}`, { exitCode: result.code });
  }
  ctx.log(`exit code ${result.code}`);
}
