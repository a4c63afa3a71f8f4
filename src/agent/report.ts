// What the agent tells the outside world: exact failure reasons, status messages for a reporter (the CLI's
// progress output today; the server's status-message endpoint once the agent talks to a server), and the
// local log file.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StepType } from './sequence.js';

/** Why a step failed; the server's per-device summary shows these. */
export type FailureReason =
  | 'content-not-found' // the content provider has no such image
  | 'content-unavailable' // it exists but could not be fetched (network, server)
  | 'hash-mismatch' // the content's bytes do not match its digest
  | 'disk-too-small' // the image does not fit the destination
  | 'unsupported-image' // e.g. a WIM to a whole disk, an ISO to a partition
  | 'corrupt-image' // compressed data that does not decompress
  | 'exit-code' // a command ended with an exit code not in its success codes
  | 'signal' // a command was killed by a signal
  | 'timeout' // a command ran past its timeout
  | 'target-not-allowed' // a destructive step aimed at a disk not configured on this machine
  | 'target-in-use' // the disk or one of its partitions is mounted or used as swap
  | 'tool-missing' // sfdisk, mkfs.ntfs, wimapply … not installed
  | 'tool-failed' // such a tool failed
  | 'undefined-variable'
  | 'invalid-value' // a substituted value is not usable (bad hostname, path outside the partition …)
  | 'io'
  | 'interrupted';

export class StepFailure extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface StepInfo {
  /** Position in the running sequence, e.g. /steps/2/steps/0 (stable for a given document). */
  path: string;
  id: string;
  name: string;
  type: StepType;
}

export type StatusKind =
  | 'sequence-started'
  | 'sequence-resumed'
  | 'step-started'
  | 'step-progress'
  | 'step-log'
  | 'step-succeeded'
  | 'step-failed'
  | 'step-skipped'
  | 'restart-requested'
  | 'sequence-succeeded'
  | 'sequence-failed';

export interface StatusMessage {
  time: string;
  kind: StatusKind;
  deploymentId: string;
  sequence: { name: string; version: number };
  step?: StepInfo;
  message: string;
  reason?: FailureReason;
  /** step-failed with continueOnError: the sequence goes on. */
  continued?: boolean;
  exitCode?: number;
  progress?: { phase: string; done: number; total: number | null; unit: 'bytes' | 'percent' };
  details?: Record<string, unknown>;
}

export interface Reporter {
  report(message: StatusMessage): void | Promise<void>;
}

/** Append-only, line-oriented local log. Written synchronously so a crash loses nothing already logged. */
export class LogFile {
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
  }

  write(line: string): void {
    appendFileSync(this.path, `${new Date().toISOString()} ${line}\n`);
  }

  status(m: StatusMessage): void {
    if (m.kind === 'step-progress') return;
    const step = m.step ? ` [${m.step.path} ${m.step.type} "${m.step.name}"]` : '';
    const reason = m.reason ? ` (${m.reason})` : '';
    this.write(`${m.kind}${step}${reason}: ${m.message}`);
  }
}
