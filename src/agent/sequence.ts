// The task sequence document: a versioned JSON document of steps, and its validation. Validation reports
// every problem at once, each with a JSON-pointer path (/steps/2/partitions/0/size), and also checks what a
// schema cannot: step ids are unique, group references have no cycle, and every %VARIABLE% is defined before
// the step that uses it (by a built-in, the sequence's variables or parameters, a set-variable step, a
// partition's output variable or apply-settings' hostname).
import { createHash } from 'node:crypto';
import { conditionVariables, type Condition } from './conditions.js';
import { isBuiltinName, referencedVariables, VARIABLE_NAME } from './variables.js';

export const SEQUENCE_FORMAT_VERSION = 1;

/** Variables the agent sets itself (see docs/task-sequences.md). */
export const BUILTIN_VARIABLES = [
  '_DeviceName',
  '_MACAddress',
  '_MACAddresses',
  '_SerialNumber',
  '_UUID',
  '_Architecture',
  '_DeploymentID',
  '_SequenceName',
  '_SequenceVersion',
  '_StepName',
  '_StepID',
  '_LastStepSucceeded',
  '_LastExitCode',
] as const;

/** apply-settings stores the hostname it wrote here, for later templates (ConfigMgr's name for it). */
export const HOSTNAME_VARIABLE = 'OSDComputerName';

export interface StepCommon {
  /** Unique in the document; defaults to the step's path. */
  id?: string;
  name?: string;
  description?: string;
  condition?: Condition;
  continueOnError?: boolean;
  /** A disabled step is kept in the document but never runs (as in ConfigMgr's editor). */
  disabled?: boolean;
}

export const PARTITION_TYPES = ['efi', 'msr', 'basic-data', 'windows', 'recovery', 'linux', 'swap'] as const;
export type PartitionType = (typeof PARTITION_TYPES)[number];
export const FILESYSTEMS = ['ntfs', 'fat32', 'ext4', 'swap', 'none'] as const;
export type Filesystem = (typeof FILESYSTEMS)[number];

export interface PartitionSpec {
  type: PartitionType;
  /** Exactly one of size (bytes, from "260MiB" etc.), percent (of the free space left) or remaining. */
  size?: number;
  percent?: number;
  remaining?: boolean;
  filesystem: Filesystem;
  label?: string;
  /** Variable that receives the partition's device path (e.g. /dev/sda3). */
  variable?: string;
  /** MBR only: the active (boot) flag. */
  bootable?: boolean;
}

export interface PartitionDiskStep extends StepCommon {
  type: 'partition-disk';
  /** A configured target's name (disk0, disk1 … or NAME from --target NAME=PATH) or its path. */
  disk: string;
  layout: 'gpt' | 'mbr';
  partitions: PartitionSpec[];
}

export type ImageDestination = { disk: string } | { partition: string };

export interface ApplyImageStep extends StepCommon {
  type: 'apply-image';
  /** NAME or NAME/VERSION of an image known to the content provider. */
  image: string;
  /** A whole disk (raw images) or a partition, named by the variable that holds its device path. */
  destination: ImageDestination;
  /** WIM images: the image index inside the WIM (default 1). */
  index?: number;
}

export interface SettingsFile {
  /** Path on the partition, e.g. Windows/Panther/unattend.xml. */
  path: string;
  /** Text with %VARIABLE% references; an undefined variable fails the step. */
  template: string;
  /** Octal permission bits for filesystems that keep them, e.g. "0600". */
  mode?: string;
}

export interface ApplySettingsStep extends StepCommon {
  type: 'apply-settings';
  /** Variable holding the device path of the partition to write to. */
  partition: string;
  hostname?: string;
  /** Where the hostname is written on the partition (default etc/hostname). */
  hostnameFile?: string;
  files?: SettingsFile[];
}

export interface RunCommandStep extends StepCommon {
  type: 'run-command';
  /** A shell command line (run by /bin/sh -c) or an argument vector (run directly). */
  command: string | string[];
  workingDirectory?: string;
  timeoutSeconds?: number;
  successCodes: number[];
  environment?: Record<string, string>;
}

export interface SetVariableStep extends StepCommon {
  type: 'set-variable';
  variable: string;
  value: string;
}

export interface RestartStep extends StepCommon {
  type: 'restart';
  message?: string;
}

export interface GroupStep extends StepCommon {
  type: 'group';
  /** Inline steps, or `use`: the id of an entry in the document's `groups`. */
  steps?: Step[];
  use?: string;
}

export type Step = PartitionDiskStep | ApplyImageStep | ApplySettingsStep | RunCommandStep | SetVariableStep | RestartStep | GroupStep;
export type StepType = Step['type'];
export const STEP_TYPES: readonly StepType[] = ['partition-disk', 'apply-image', 'apply-settings', 'run-command', 'set-variable', 'restart', 'group'];
/** Steps that write to disks: refused unless their target is configured on the machine. */
export const DESTRUCTIVE_STEP_TYPES: readonly StepType[] = ['partition-disk', 'apply-image', 'apply-settings'];

export interface GroupDefinition {
  name?: string;
  steps: Step[];
}

export interface TaskSequence {
  formatVersion: 1;
  name: string;
  version: number;
  description?: string;
  /** Defaults; deployment and collection variables override them. */
  variables: Record<string, string>;
  /** Variables the deployment must supply (no default). */
  parameters: string[];
  /** Reusable groups, referenced by `{ "type": "group", "use": "ID" }`. */
  groups: Record<string, GroupDefinition>;
  steps: Step[];
}

export interface ValidationIssue {
  path: string;
  message: string;
}

export class SequenceValidationError extends Error {
  constructor(
    readonly errors: ValidationIssue[],
    readonly warnings: ValidationIssue[] = [],
  ) {
    super(`invalid task sequence: ${errors.length} error(s):\n${errors.map((e) => `  ${e.path || '/'}: ${e.message}`).join('\n')}`);
  }
}

export interface ValidationResult {
  sequence: TaskSequence | null;
  errors: ValidationIssue[];
  warnings: ValidationIssue[];
}

/** Parses and validates; throws SequenceValidationError listing every problem. */
export function parseSequence(input: unknown): TaskSequence {
  const result = validateSequence(input);
  if (!result.sequence) throw new SequenceValidationError(result.errors, result.warnings);
  return result.sequence;
}

/** Parses JSON text first, so a syntax error is reported like any other problem. */
export function parseSequenceText(text: string): TaskSequence {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SequenceValidationError([{ path: '', message: `not valid JSON: ${(err as Error).message}` }]);
  }
  return parseSequence(value);
}

/** Identifies a document's exact content (the state file refuses to resume a different one). */
export function sequenceDigest(sequence: TaskSequence): string {
  return createHash('sha256').update(JSON.stringify(sequence)).digest('hex');
}

/** The steps a group runs: inline, or those of the definition it uses. */
export function groupSteps(sequence: TaskSequence, group: GroupStep): Step[] {
  return group.steps ?? sequence.groups[group.use!]!.steps;
}

const BINARY_UNITS: Record<string, number> = { '': 1, B: 1, K: 2 ** 10, KIB: 2 ** 10, M: 2 ** 20, MIB: 2 ** 20, G: 2 ** 30, GIB: 2 ** 30, T: 2 ** 40, TIB: 2 ** 40 };

/** "260MiB", "16M", "1.5GiB", "4096" (bytes); K/M/G/T are binary units, as in sfdisk and disk tools. */
export function parsePartitionSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  const scale = m ? BINARY_UNITS[m[2]!.toUpperCase()] : undefined;
  if (!m || scale === undefined) return null;
  return Math.round(Number(m[1]) * scale);
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** Longest volume label each filesystem takes. */
export const LABEL_LIMITS: Partial<Record<Filesystem, number>> = { fat32: 11, ntfs: 128, ext4: 16 };

type Json = Record<string, unknown>;

class Checker {
  readonly errors: ValidationIssue[] = [];
  readonly warnings: ValidationIssue[] = [];

  error(path: string, message: string): void {
    this.errors.push({ path, message });
  }

  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }

  object(value: unknown, path: string): Json | null {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Json;
    this.error(path, `must be an object, got ${describe(value)}`);
    return null;
  }

  /** Unknown fields are errors: a misspelt "continueOnEror" must not be ignored silently. */
  fields(obj: Json, path: string, allowed: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) this.error(`${path}/${escapePointer(key)}`, `unknown field "${key}" (allowed here: ${allowed.join(', ')})`);
    }
  }

  string(obj: Json, key: string, path: string, required: boolean): string | undefined {
    const value = obj[key];
    if (value === undefined) {
      if (required) this.error(`${path}/${key}`, `missing required field "${key}" (a string)`);
      return undefined;
    }
    if (typeof value !== 'string') {
      this.error(`${path}/${key}`, `must be a string, got ${describe(value)}`);
      return undefined;
    }
    if (required && value.trim() === '') this.error(`${path}/${key}`, 'must not be empty');
    return value;
  }

  boolean(obj: Json, key: string, path: string): boolean | undefined {
    const value = obj[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean') {
      this.error(`${path}/${key}`, `must be true or false, got ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  number(obj: Json, key: string, path: string, opts: { required?: boolean; integer?: boolean; min?: number; max?: number }): number | undefined {
    const value = obj[key];
    if (value === undefined) {
      if (opts.required) this.error(`${path}/${key}`, `missing required field "${key}" (a number)`);
      return undefined;
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || (opts.integer && !Number.isInteger(value))) {
      this.error(`${path}/${key}`, `must be ${opts.integer ? 'an integer' : 'a number'}, got ${describe(value)}`);
      return undefined;
    }
    if ((opts.min !== undefined && value < opts.min) || (opts.max !== undefined && value > opts.max)) {
      this.error(`${path}/${key}`, `must be from ${opts.min ?? '-∞'} to ${opts.max ?? '∞'}, got ${value}`);
      return undefined;
    }
    return value;
  }

  oneOf<T extends string>(obj: Json, key: string, path: string, values: readonly T[], required: boolean): T | undefined {
    const value = this.string(obj, key, path, required);
    if (value === undefined) return undefined;
    if (!values.includes(value as T)) {
      this.error(`${path}/${key}`, `"${value}" is not one of: ${values.join(', ')}`);
      return undefined;
    }
    return value as T;
  }

  variableName(value: string, path: string, purpose: 'set' | 'use'): boolean {
    if (!VARIABLE_NAME.test(value)) {
      this.error(path, `"${value}" is not a variable name (letters, digits and _, not starting with a digit)`);
      return false;
    }
    if (purpose === 'set' && isBuiltinName(value)) {
      this.error(path, `"${value}" is reserved: names starting with _ are set by the agent`);
      return false;
    }
    return true;
  }

  stringMap(value: unknown, path: string, keysAreVariables: boolean): Record<string, string> {
    const obj = this.object(value, path);
    const out: Record<string, string> = {};
    if (!obj) return out;
    for (const [k, v] of Object.entries(obj)) {
      const p = `${path}/${escapePointer(k)}`;
      if (keysAreVariables) this.variableName(k, p, 'set');
      if (typeof v !== 'string') this.error(p, `must be a string, got ${describe(v)}`);
      else out[k] = v;
    }
    return out;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value === 'object' ? 'an object' : typeof value === 'number' ? `the number ${value}` : typeof value}`;
}

function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

const COMMON_FIELDS = ['id', 'type', 'name', 'description', 'condition', 'continueOnError', 'disabled'] as const;

function parseCondition(c: Checker, value: unknown, path: string): Condition | undefined {
  const obj = c.object(value, path);
  if (!obj) return undefined;
  for (const op of ['and', 'or'] as const) {
    if (op in obj) {
      c.fields(obj, path, [op]);
      const list = obj[op];
      if (!Array.isArray(list) || list.length === 0) {
        c.error(`${path}/${op}`, `must be a non-empty array of conditions`);
        return undefined;
      }
      const parts = list.map((item, i) => parseCondition(c, item, `${path}/${op}/${i}`));
      return parts.every((p) => p !== undefined) ? ({ [op]: parts } as Condition) : undefined;
    }
  }
  if ('not' in obj) {
    c.fields(obj, path, ['not']);
    const inner = parseCondition(c, obj.not, `${path}/not`);
    return inner && { not: inner };
  }
  const tests = ['equals', 'notEquals', 'exists', 'matches'].filter((k) => k in obj);
  if (!('variable' in obj) || tests.length !== 1) {
    c.error(path, 'a condition is { "variable": NAME, and one of "equals", "notEquals", "exists", "matches" } or { "and": [...] }, { "or": [...] }, { "not": {...} }');
    return undefined;
  }
  const test = tests[0]!;
  c.fields(obj, path, ['variable', test, ...(test === 'equals' || test === 'notEquals' ? ['ignoreCase'] : [])]);
  const variable = c.string(obj, 'variable', path, true);
  if (variable !== undefined && !c.variableName(variable, `${path}/variable`, 'use')) return undefined;
  if (test === 'exists') {
    const exists = c.boolean(obj, 'exists', path);
    return variable !== undefined && exists !== undefined ? { variable, exists } : undefined;
  }
  const operand = c.string(obj, test, path, false);
  if (operand === undefined) {
    if (obj[test] === undefined) c.error(`${path}/${test}`, 'must be a string');
    return undefined;
  }
  if (test === 'matches') {
    try {
      new RegExp(operand, 'u');
    } catch (err) {
      c.error(`${path}/matches`, `not a valid regular expression: ${(err as Error).message}`);
      return undefined;
    }
  }
  const ignoreCase = c.boolean(obj, 'ignoreCase', path);
  if (variable === undefined) return undefined;
  return { variable, [test]: operand, ...(ignoreCase !== undefined ? { ignoreCase } : {}) } as Condition;
}

function parsePartition(c: Checker, value: unknown, path: string, layout: 'gpt' | 'mbr' | undefined, isLast: boolean): PartitionSpec | undefined {
  const obj = c.object(value, path);
  if (!obj) return undefined;
  c.fields(obj, path, ['type', 'size', 'percent', 'remaining', 'filesystem', 'label', 'variable', 'bootable']);
  const type = c.oneOf(obj, 'type', path, PARTITION_TYPES, true);
  const sizing = ['size', 'percent', 'remaining'].filter((k) => obj[k] !== undefined && obj[k] !== false);
  if (sizing.length !== 1) c.error(path, `give exactly one of "size" (e.g. "260MiB"), "percent" (of the free space left) or "remaining": true; got ${sizing.length ? sizing.join(' and ') : 'none'}`);
  let size: number | undefined;
  if (obj.size !== undefined) {
    const parsed = typeof obj.size === 'string' ? parsePartitionSize(obj.size) : typeof obj.size === 'number' && Number.isInteger(obj.size) ? obj.size : null;
    if (parsed === null) c.error(`${path}/size`, `must be a size like "260MiB", "16M", "2GiB" or a number of bytes, got ${describe(obj.size)}`);
    else if (parsed < 1024 * 1024) c.error(`${path}/size`, `must be at least 1 MiB, got ${parsed} bytes`);
    else size = parsed;
  }
  const percent = c.number(obj, 'percent', path, { min: 1, max: 100 });
  const remaining = c.boolean(obj, 'remaining', path);
  if (remaining && !isLast) c.error(`${path}/remaining`, 'only the last partition can take the remaining space');
  const defaultFs: Filesystem = type === 'efi' ? 'fat32' : type === 'swap' ? 'swap' : 'none';
  const filesystem = c.oneOf(obj, 'filesystem', path, FILESYSTEMS, false) ?? defaultFs;
  if (type === 'msr' && filesystem !== 'none') c.error(`${path}/filesystem`, 'an MSR partition has no filesystem');
  if (type === 'msr' && layout === 'mbr') c.error(`${path}/type`, 'an MSR partition exists only on GPT disks');
  if (type === 'efi' && filesystem !== 'fat32') c.error(`${path}/filesystem`, 'an EFI system partition must be fat32');
  if ((filesystem === 'swap') !== (type === 'swap') && obj.filesystem !== undefined) c.error(`${path}/filesystem`, 'filesystem "swap" goes with partition type "swap" only');
  const label = c.string(obj, 'label', path, false);
  const limit = LABEL_LIMITS[filesystem];
  if (label !== undefined && limit !== undefined && referencedVariables(label).length === 0 && label.length > limit) c.error(`${path}/label`, `a ${filesystem} label has at most ${limit} characters, "${label}" has ${label.length}`);
  if (label !== undefined && filesystem === 'none') c.error(`${path}/label`, 'a label needs a filesystem');
  const variable = c.string(obj, 'variable', path, false);
  if (variable !== undefined) c.variableName(variable, `${path}/variable`, 'set');
  const bootable = c.boolean(obj, 'bootable', path);
  if (bootable && layout === 'gpt') c.error(`${path}/bootable`, 'the active flag exists only on MBR disks (GPT boots from the EFI partition)');
  if (!type) return undefined;
  return { type, filesystem, ...(size !== undefined ? { size } : {}), ...(percent !== undefined ? { percent } : {}), ...(remaining ? { remaining } : {}), ...(label !== undefined ? { label } : {}), ...(variable !== undefined ? { variable } : {}), ...(bootable !== undefined ? { bootable } : {}) };
}

function parseStep(c: Checker, value: unknown, path: string): Step | undefined {
  const obj = c.object(value, path);
  if (!obj) return undefined;
  const type = obj.type;
  if (type === undefined) {
    c.error(`${path}/type`, `missing required field "type" (one of: ${STEP_TYPES.join(', ')})`);
    return undefined;
  }
  if (typeof type !== 'string' || !STEP_TYPES.includes(type as StepType)) {
    c.error(`${path}/type`, `unknown step type ${JSON.stringify(type)} (known: ${STEP_TYPES.join(', ')})`);
    return undefined;
  }
  const common: StepCommon = {};
  const id = c.string(obj, 'id', path, false);
  if (id !== undefined) {
    if (!ID_PATTERN.test(id)) c.error(`${path}/id`, `"${id}" is not a valid id (letters, digits, ".", "_", "-", starting with a letter or digit)`);
    common.id = id;
  }
  const name = c.string(obj, 'name', path, false);
  if (name !== undefined) common.name = name;
  const description = c.string(obj, 'description', path, false);
  if (description !== undefined) common.description = description;
  if (obj.condition !== undefined) {
    const condition = parseCondition(c, obj.condition, `${path}/condition`);
    if (condition) common.condition = condition;
  }
  const continueOnError = c.boolean(obj, 'continueOnError', path);
  if (continueOnError !== undefined) common.continueOnError = continueOnError;
  const disabled = c.boolean(obj, 'disabled', path);
  if (disabled !== undefined) common.disabled = disabled;
  const errorsBefore = c.errors.length;
  const fields = (...own: string[]) => c.fields(obj, path, [...COMMON_FIELDS, ...own]);

  let step: Step | undefined;
  switch (type as StepType) {
    case 'partition-disk': {
      fields('disk', 'layout', 'partitions');
      const disk = c.string(obj, 'disk', path, true);
      const layout = c.oneOf(obj, 'layout', path, ['gpt', 'mbr'] as const, true);
      const list = obj.partitions;
      const partitions: PartitionSpec[] = [];
      if (!Array.isArray(list) || list.length === 0) c.error(`${path}/partitions`, list === undefined ? 'missing required field "partitions" (a non-empty array)' : 'must be a non-empty array of partitions');
      else {
        if (layout === 'mbr' && list.length > 4) c.error(`${path}/partitions`, `an MBR disk holds at most 4 primary partitions, got ${list.length}`);
        if (layout === 'gpt' && list.length > 128) c.error(`${path}/partitions`, `a GPT disk holds at most 128 partitions, got ${list.length}`);
        list.forEach((p, i) => {
          const spec = parsePartition(c, p, `${path}/partitions/${i}`, layout, i === list.length - 1);
          if (spec) partitions.push(spec);
        });
        const percents = partitions.reduce((sum, p) => sum + (p.percent ?? 0), 0);
        if (percents > 100) c.error(`${path}/partitions`, `percentages add up to ${percents} %, more than the free space`);
      }
      if (disk !== undefined && layout) step = { ...common, type: 'partition-disk', disk, layout, partitions };
      break;
    }
    case 'apply-image': {
      fields('image', 'destination', 'index');
      const image = c.string(obj, 'image', path, true);
      const dest = obj.destination === undefined ? (c.error(`${path}/destination`, 'missing required field "destination": { "disk": "disk0" } or { "partition": "VARIABLE" }'), null) : c.object(obj.destination, `${path}/destination`);
      let destination: ImageDestination | undefined;
      if (dest) {
        const dpath = `${path}/destination`;
        if (('disk' in dest) === ('partition' in dest)) c.error(dpath, 'give exactly one of "disk" (a configured target) or "partition" (the variable holding a partition\'s device path)');
        else if ('disk' in dest) {
          c.fields(dest, dpath, ['disk']);
          const disk = c.string(dest, 'disk', dpath, true);
          if (disk !== undefined) destination = { disk };
        } else {
          c.fields(dest, dpath, ['partition']);
          const partition = c.string(dest, 'partition', dpath, true);
          if (partition !== undefined && c.variableName(partition, `${dpath}/partition`, 'use')) destination = { partition };
        }
      }
      const index = c.number(obj, 'index', path, { integer: true, min: 1 });
      if (image !== undefined && destination) step = { ...common, type: 'apply-image', image, destination, ...(index !== undefined ? { index } : {}) };
      break;
    }
    case 'apply-settings': {
      fields('partition', 'hostname', 'hostnameFile', 'files');
      const partition = c.string(obj, 'partition', path, true);
      if (partition !== undefined) c.variableName(partition, `${path}/partition`, 'use');
      const hostname = c.string(obj, 'hostname', path, false);
      const hostnameFile = c.string(obj, 'hostnameFile', path, false);
      if (hostnameFile !== undefined && hostname === undefined) c.error(`${path}/hostnameFile`, 'needs "hostname"');
      let files: SettingsFile[] | undefined;
      if (obj.files !== undefined) {
        if (!Array.isArray(obj.files)) c.error(`${path}/files`, `must be an array of { "path", "template" }, got ${describe(obj.files)}`);
        else {
          files = [];
          obj.files.forEach((f, i) => {
            const fpath = `${path}/files/${i}`;
            const file = c.object(f, fpath);
            if (!file) return;
            c.fields(file, fpath, ['path', 'template', 'mode']);
            const p = c.string(file, 'path', fpath, true);
            const template = c.string(file, 'template', fpath, false);
            if (template === undefined && file.template === undefined) c.error(`${fpath}/template`, 'missing required field "template" (a string)');
            const mode = c.string(file, 'mode', fpath, false);
            if (mode !== undefined && !/^0?[0-7]{3}$/.test(mode)) c.error(`${fpath}/mode`, `must be octal permission bits like "0644", got "${mode}"`);
            if (p !== undefined && template !== undefined) files!.push({ path: p, template, ...(mode !== undefined ? { mode } : {}) });
          });
        }
      }
      if (hostname === undefined && !files?.length) c.error(path, 'apply-settings needs "hostname" or a non-empty "files"');
      if (partition !== undefined) step = { ...common, type: 'apply-settings', partition, ...(hostname !== undefined ? { hostname } : {}), ...(hostnameFile !== undefined ? { hostnameFile } : {}), ...(files ? { files } : {}) };
      break;
    }
    case 'run-command': {
      fields('command', 'workingDirectory', 'timeoutSeconds', 'successCodes', 'environment');
      let command: string | string[] | undefined;
      if (obj.command === undefined) c.error(`${path}/command`, 'missing required field "command" (a command line, or an array of arguments)');
      else if (typeof obj.command === 'string' && obj.command.trim()) command = obj.command;
      else if (Array.isArray(obj.command) && obj.command.length > 0 && obj.command.every((a) => typeof a === 'string') && obj.command[0].trim()) command = obj.command as string[];
      else c.error(`${path}/command`, `must be a non-empty command line or a non-empty array of strings, got ${describe(obj.command)}`);
      const workingDirectory = c.string(obj, 'workingDirectory', path, false);
      const timeoutSeconds = c.number(obj, 'timeoutSeconds', path, { min: 0.001 });
      let successCodes = [0];
      if (obj.successCodes !== undefined) {
        const codes = obj.successCodes;
        if (!Array.isArray(codes) || codes.length === 0 || !codes.every((n) => Number.isInteger(n) && n >= 0 && n <= 255)) c.error(`${path}/successCodes`, `must be a non-empty array of exit codes 0-255, got ${describe(codes)}`);
        else successCodes = codes as number[];
      }
      const environment = obj.environment === undefined ? undefined : c.stringMap(obj.environment, `${path}/environment`, false);
      if (command !== undefined) step = { ...common, type: 'run-command', command, successCodes, ...(workingDirectory !== undefined ? { workingDirectory } : {}), ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}), ...(environment ? { environment } : {}) };
      break;
    }
    case 'set-variable': {
      fields('variable', 'value');
      const variable = c.string(obj, 'variable', path, true);
      if (variable !== undefined) c.variableName(variable, `${path}/variable`, 'set');
      const value = c.string(obj, 'value', path, false);
      if (obj.value === undefined) c.error(`${path}/value`, 'missing required field "value" (a string)');
      if (variable !== undefined && value !== undefined) step = { ...common, type: 'set-variable', variable, value };
      break;
    }
    case 'restart': {
      fields('message');
      const message = c.string(obj, 'message', path, false);
      step = { ...common, type: 'restart', ...(message !== undefined ? { message } : {}) };
      break;
    }
    case 'group': {
      fields('steps', 'use');
      if (('steps' in obj) === ('use' in obj)) {
        c.error(path, 'a group has either "steps" (inline) or "use" (the id of an entry in "groups"), not both or neither');
        break;
      }
      if ('use' in obj) {
        const use = c.string(obj, 'use', path, true);
        if (use !== undefined) step = { ...common, type: 'group', use };
      } else {
        const steps = parseSteps(c, obj.steps, `${path}/steps`);
        if (steps) step = { ...common, type: 'group', steps };
      }
      break;
    }
  }
  // A group stays (with holes for its broken steps) so references inside it are still checked.
  return c.errors.length === errorsBefore || step?.type === 'group' ? step : undefined;
}

/**
 * Parses a list of steps. A step with errors leaves a hole (undefined) at its index, so that the other steps'
 * references are still checked at their true paths; a document with any hole is never returned as valid.
 */
function parseSteps(c: Checker, value: unknown, path: string): Step[] | undefined {
  if (!Array.isArray(value)) {
    c.error(path, value === undefined ? 'missing required field (an array of steps)' : `must be an array of steps, got ${describe(value)}`);
    return undefined;
  }
  return value.map((s, i) => parseStep(c, s, `${path}/${i}`)) as Step[];
}

/** Validates a document; `sequence` is null when there is any error. */
export function validateSequence(input: unknown): ValidationResult {
  const c = new Checker();
  const doc = c.object(input, '');
  if (!doc) return { sequence: null, errors: c.errors, warnings: c.warnings };
  c.fields(doc, '', ['formatVersion', 'name', 'version', 'description', 'variables', 'parameters', 'groups', 'steps']);
  if (doc.formatVersion === undefined) c.error('/formatVersion', `missing required field "formatVersion" (${SEQUENCE_FORMAT_VERSION})`);
  else if (doc.formatVersion !== SEQUENCE_FORMAT_VERSION) c.error('/formatVersion', `this agent reads format version ${SEQUENCE_FORMAT_VERSION}, the document has ${JSON.stringify(doc.formatVersion)}: update the agent`);
  const name = c.string(doc, 'name', '', true);
  const version = c.number(doc, 'version', '', { required: true, integer: true, min: 1 });
  const description = c.string(doc, 'description', '', false);
  const variables = doc.variables === undefined ? {} : c.stringMap(doc.variables, '/variables', true);
  let parameters: string[] = [];
  if (doc.parameters !== undefined) {
    if (!Array.isArray(doc.parameters)) c.error('/parameters', `must be an array of variable names, got ${describe(doc.parameters)}`);
    else {
      const withDefault = new Set(Object.keys(variables).map((k) => k.toUpperCase()));
      doc.parameters.forEach((p, i) => {
        if (typeof p !== 'string') return c.error(`/parameters/${i}`, `must be a variable name, got ${describe(p)}`);
        if (withDefault.has(p.toUpperCase())) c.error(`/parameters/${i}`, `"${p}" also has a default in "variables": a parameter is a variable without a default`);
        if (c.variableName(p, `/parameters/${i}`, 'set')) parameters.push(p);
      });
    }
  }
  const groups: Record<string, GroupDefinition> = {};
  if (doc.groups !== undefined) {
    const defs = c.object(doc.groups, '/groups');
    for (const [gid, def] of Object.entries(defs ?? {})) {
      const gpath = `/groups/${escapePointer(gid)}`;
      if (!ID_PATTERN.test(gid)) c.error(gpath, `"${gid}" is not a valid group id (letters, digits, ".", "_", "-")`);
      const obj = c.object(def, gpath);
      if (!obj) continue;
      c.fields(obj, gpath, ['name', 'steps']);
      const gname = c.string(obj, 'name', gpath, false);
      const steps = parseSteps(c, obj.steps, `${gpath}/steps`);
      groups[gid] = { ...(gname !== undefined ? { name: gname } : {}), steps: steps ?? [] };
    }
  }
  const steps = parseSteps(c, doc.steps, '/steps');
  if (steps && steps.length === 0) c.error('/steps', 'a task sequence needs at least one step');
  if (!steps || name === undefined || version === undefined) return { sequence: null, errors: c.errors, warnings: c.warnings };

  const sequence: TaskSequence = { formatVersion: 1, name, version, ...(description !== undefined ? { description } : {}), variables, parameters, groups, steps };
  checkReferences(c, sequence);
  return { sequence: c.errors.length ? null : sequence, errors: c.errors, warnings: c.warnings };
}

/** Variables a step reads through %NAME% (with the field each is in) and names it reads directly. */
function stepReads(step: Step): { field: string; text: string }[] {
  switch (step.type) {
    case 'partition-disk':
      return [{ field: 'disk', text: step.disk }, ...step.partitions.flatMap((p, i) => (p.label ? [{ field: `partitions/${i}/label`, text: p.label }] : []))];
    case 'apply-image':
      return [{ field: 'image', text: step.image }, ...('disk' in step.destination ? [{ field: 'destination/disk', text: step.destination.disk }] : [{ field: 'destination/partition', text: `%${step.destination.partition}%` }])];
    case 'apply-settings':
      return [
        { field: 'partition', text: `%${step.partition}%` },
        ...(step.hostname !== undefined ? [{ field: 'hostname', text: step.hostname }] : []),
        ...(step.hostnameFile !== undefined ? [{ field: 'hostnameFile', text: step.hostnameFile }] : []),
        ...(step.files ?? []).flatMap((f, i) => [
          { field: `files/${i}/path`, text: f.path },
          { field: `files/${i}/template`, text: f.template },
        ]),
      ];
    case 'run-command':
      return [
        ...(typeof step.command === 'string' ? [{ field: 'command', text: step.command }] : step.command.map((a, i) => ({ field: `command/${i}`, text: a }))),
        ...(step.workingDirectory !== undefined ? [{ field: 'workingDirectory', text: step.workingDirectory }] : []),
        ...Object.entries(step.environment ?? {}).map(([k, v]) => ({ field: `environment/${escapePointer(k)}`, text: v })),
      ];
    case 'set-variable':
      return [{ field: 'value', text: step.value }];
    case 'restart':
      return step.message !== undefined ? [{ field: 'message', text: step.message }] : [];
    case 'group':
      return [];
  }
}

/** Variables a step defines for the steps after it. */
function stepWrites(step: Step): string[] {
  if (step.type === 'set-variable') return [step.variable];
  if (step.type === 'partition-disk') return step.partitions.flatMap((p) => (p.variable ? [p.variable] : []));
  if (step.type === 'apply-settings' && step.hostname !== undefined) return [HOSTNAME_VARIABLE];
  return [];
}

function checkReferences(c: Checker, sequence: TaskSequence): void {
  // Unique ids across the main steps and every group definition.
  const seen = new Map<string, string>();
  const visitIds = (steps: Step[], path: string) =>
    steps.forEach((s, i) => {
      const p = `${path}/${i}`;
      if (!s) return;
      if (s.id !== undefined) {
        const first = seen.get(s.id);
        if (first) c.error(`${p}/id`, `duplicate step id "${s.id}" (also used at ${first})`);
        else seen.set(s.id, p);
      }
      if (s.type === 'group' && s.steps) visitIds(s.steps, `${p}/steps`);
    });
  visitIds(sequence.steps, '/steps');
  for (const [gid, def] of Object.entries(sequence.groups)) visitIds(def.steps, `/groups/${escapePointer(gid)}/steps`);

  // Group references: exist, and no cycle (a group that, through any chain of uses, uses itself).
  const uses = (steps: Step[], path: string): { use: string; path: string }[] =>
    steps.flatMap((s, i) => (s?.type !== 'group' ? [] : s.use !== undefined ? [{ use: s.use, path: `${path}/${i}/use` }] : uses(s.steps!, `${path}/${i}/steps`)));
  let broken = false;
  const checkUses = (steps: Step[], path: string) => {
    for (const u of uses(steps, path)) {
      if (!(u.use in sequence.groups)) {
        c.error(u.path, `no group "${u.use}" in "groups"${Object.keys(sequence.groups).length ? ` (defined: ${Object.keys(sequence.groups).join(', ')})` : ''}`);
        broken = true;
      }
    }
  };
  checkUses(sequence.steps, '/steps');
  for (const [gid, def] of Object.entries(sequence.groups)) checkUses(def.steps, `/groups/${escapePointer(gid)}/steps`);
  if (broken) return;
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (gid: string, chain: string[]): void => {
    if (state.get(gid) === 'done') return;
    if (state.get(gid) === 'visiting') {
      const cycle = [...chain.slice(chain.indexOf(gid)), gid];
      broken = true;
      c.error(`/groups/${escapePointer(gid)}`, `group cycle: ${cycle.join(' → ')} (a group cannot use itself, directly or through other groups)`);
      return;
    }
    state.set(gid, 'visiting');
    for (const u of uses(sequence.groups[gid]!.steps, '')) visit(u.use, [...chain, gid]);
    state.set(gid, 'done');
  };
  for (const gid of Object.keys(sequence.groups)) visit(gid, []);
  if (broken) return;
  const used = new Set([sequence.steps, ...Object.values(sequence.groups).map((d) => d.steps)].flatMap((steps) => uses(steps, '').map((u) => u.use)));
  for (const gid of Object.keys(sequence.groups).filter((g) => !used.has(g))) c.warn(`/groups/${escapePointer(gid)}`, `group "${gid}" is never used`);

  // Variables: walk the steps in execution order. A definition inside a conditional step counts for the steps
  // after it (whether it runs is known only at run time; a variable still missing then fails that step).
  const everDefined = new Set<string>([...BUILTIN_VARIABLES, ...Object.keys(sequence.variables), ...sequence.parameters].map((n) => n.toUpperCase()));
  const collectWrites = (steps: Step[]) =>
    steps.forEach((s) => {
      if (!s) return;
      stepWrites(s).forEach((n) => everDefined.add(n.toUpperCase()));
      if (s.type === 'group') collectWrites(groupSteps(sequence, s));
    });
  collectWrites(sequence.steps);
  const defined = new Set<string>([...BUILTIN_VARIABLES, ...Object.keys(sequence.variables), ...sequence.parameters].map((n) => n.toUpperCase()));
  const reported = new Set<string>();
  const walk = (steps: Step[], path: string, via: string) =>
    steps.forEach((s, i) => {
      const p = `${path}/${i}`;
      if (!s) return;
      for (const name of s.condition ? conditionVariables(s.condition) : []) {
        if (!everDefined.has(name.toUpperCase()) && !reported.has(`${p}:${name}`)) {
          reported.add(`${p}:${name}`);
          c.warn(`${p}/condition`, `variable ${name} is never defined by the sequence; the condition depends on the deployment supplying it`);
        }
      }
      // apply-settings sets the hostname variable before it renders its files.
      const ownHostname = s.type === 'apply-settings' && s.hostname !== undefined;
      for (const { field, text } of stepReads(s)) {
        for (const name of referencedVariables(text)) {
          if (ownHostname && field !== 'hostname' && name.toUpperCase() === HOSTNAME_VARIABLE.toUpperCase()) continue;
          if (defined.has(name.toUpperCase()) || reported.has(`${p}/${field}:${name}`)) continue;
          reported.add(`${p}/${field}:${name}`);
          const later = everDefined.has(name.toUpperCase());
          const builtinHint = isBuiltinName(name) ? ` (built-ins: ${BUILTIN_VARIABLES.join(', ')})` : '';
          c.error(`${p}/${field}`, `variable ${name} is used before it is defined${via}${later ? ' (it is set only by a later step)' : `: nothing defines it${builtinHint}; add it to "variables" or "parameters", or set it in an earlier step`}`);
        }
      }
      if (s.type === 'group') {
        if (s.steps) walk(s.steps, `${p}/steps`, via);
        else walk(sequence.groups[s.use!]!.steps, `/groups/${escapePointer(s.use!)}/steps`, ` (group used from ${p})`);
      }
      stepWrites(s).forEach((n) => defined.add(n.toUpperCase()));
    });
  walk(sequence.steps, '/steps', '');
}
