// What a step implementation gets from the runner.
import type { ContentProvider } from '../content.js';
import type { Targets } from '../targets.js';
import type { Variables } from '../variables.js';

export interface StepContext {
  /** The step's path, e.g. /steps/3, for messages. */
  path: string;
  variables: Variables;
  targets: Targets;
  content: ContentProvider;
  /** A folder for downloaded content and scratch files, kept across restarts. */
  workDir: string;
  signal: AbortSignal;
  /** Substitutes variables in one of the step's fields (the field name goes into error messages). */
  text(value: string, field: string): string;
  /** A line for the local log only (tool output, details). */
  log(line: string): void;
  /** A note worth reporting to the server too (e.g. which device a partition got). */
  note(message: string): void;
  /** Progress of one phase of the step (download, write, apply …). */
  progress(phase: string, done: number, total: number | null, unit: 'bytes' | 'percent'): void;
  /** Remembers which disk and partition number an output variable names, to re-resolve it after a restart. */
  recordPartition(variable: string, target: string, number: number): void;
}
