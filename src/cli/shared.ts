// Helpers shared by the fleetcast commands: exit codes, argument parsing, interruption, progress bars.
import { createRequire } from 'node:module';
import { InvalidArgumentError } from 'commander';
import type { SingleBar } from 'cli-progress';
import type { ReceiveResult } from '../transport/session.js';
import { formatBytes } from './units.js';

/** Exit codes (README "Exit codes"). */
export const Exit = {
  ok: 0,
  usage: 1,
  transferFailed: 2,
  timeout: 3,
  integrity: 4,
  io: 5,
  interrupted: 130,
} as const;

export function checked<T>(parse: (text: string) => T) {
  return (text: string): T => {
    try {
      return parse(text);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

export function log(quiet: boolean, message: string): void {
  if (!quiet) process.stderr.write(`fleetcast: ${message}\n`);
}

export function interruptSignal(): AbortController {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(Exit.interrupted);
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return controller;
}

// cli-progress is loaded when a bar is shown: runs from scripts (--json, pipes, no terminal) start without it.
const requireModule = createRequire(import.meta.url);

/** A progress bar on stderr if enabled and stderr is a terminal; {value} and {total} are shown as sizes. */
export function progressBar(enabled: boolean, format: string): SingleBar | null {
  if (!enabled || !process.stderr.isTTY) return null;
  const cliProgress = requireModule('cli-progress') as typeof import('cli-progress');
  return new cliProgress.SingleBar(
    { format, stream: process.stderr, hideCursor: true, etaBuffer: 50, formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? formatBytes(v) : String(v)) },
    cliProgress.Presets.shades_classic,
  );
}

/** The exit code for a multicast receive (README "Exit codes"); `fetch` uses the same. */
export function receiveExitCode(result: Pick<ReceiveResult, 'ok' | 'reason'>, interrupted: boolean): number {
  if (result.ok) return Exit.ok;
  if (interrupted) return Exit.interrupted;
  if (result.reason === 'timeout') return Exit.timeout;
  if (result.reason === 'hash-mismatch') return Exit.integrity;
  if (result.reason === 'io' || result.reason === 'aborted') return Exit.io;
  return Exit.transferFailed;
}
