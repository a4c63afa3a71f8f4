// The resumable state file: where a run is, what it has done, and its variables. Written atomically (temp
// file, fsync, rename, fsync of the folder) after every step, so a crash or a restart leaves either the old
// or the new state, never a torn one.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { FailureReason } from './report.js';

export const STATE_VERSION = 1;

export interface StepRecord {
  outcome: 'succeeded' | 'failed' | 'skipped';
  /** failed with continueOnError: the run went on. */
  continued?: boolean;
  reason?: FailureReason;
  message?: string;
  finishedAt: string;
}

export interface RunState {
  stateVersion: typeof STATE_VERSION;
  sequence: { name: string; version: number; digest: string };
  deploymentId: string;
  status: 'running' | 'restart-pending' | 'succeeded' | 'failed';
  startedAt: string;
  updatedAt: string;
  /** The step being run; if the agent dies, this step runs again on resume. */
  current: string | null;
  /** The sequence's variables (defaults, deployment's, set by steps); built-ins are re-read each run. */
  variables: Record<string, string>;
  /** Finished steps by path (groups too). */
  steps: Record<string, StepRecord>;
  /** Groups whose condition was true: on resume they are entered without evaluating it again. */
  enteredGroups: string[];
  /** Partition output variables, by the disk and partition number they name (loop devices change names). */
  partitionOutputs: Record<string, { target: string; number: number }>;
  /** The restart step waiting for the machine to come back. */
  restartStep: string | null;
  restarts: number;
  failure?: { step: string; reason: FailureReason; message: string };
}

export class StateFileError extends Error {}

export function readState(path: string): RunState | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StateFileError(`cannot read the state file ${path}: ${(err as Error).message}`);
  }
  let state: RunState;
  try {
    state = JSON.parse(text) as RunState;
  } catch (err) {
    throw new StateFileError(`the state file ${path} is not valid JSON (${(err as Error).message}); move it away to start the sequence from the beginning`);
  }
  if (state?.stateVersion !== STATE_VERSION || typeof state.steps !== 'object' || typeof state.variables !== 'object') {
    throw new StateFileError(`the state file ${path} is not a fleetcast agent state (version ${STATE_VERSION}); move it away to start from the beginning`);
  }
  return state;
}

export function writeState(path: string, state: RunState): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  state.updatedAt = new Date().toISOString();
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeFileSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
