// The deployment model's rules, apart from HTTP and storage: collection membership, task sequence uploads
// (validated by the agent's own validator, images checked against the library), the policy a device gets,
// and the per-device summary folded from status messages.
import {
  isBuiltinName,
  parseImageReference,
  sequenceDigest,
  validateSequence,
  VARIABLE_NAME,
  type Step,
  type TaskSequence,
  type ValidationIssue,
} from '../agent/index.js';
import type {
  CollectionRecord,
  CollectionRule,
  DeploymentRecord,
  DeviceDeploymentSummary,
  DeviceRecord,
  ReceivedStatus,
  TaskSequenceVersion,
} from '../db/deployment-repositories.js';
import type { ImageRecord } from '../db/repositories.js';

/** An API error listing every problem with its JSON-pointer path. */
export class ModelError extends Error {
  constructor(
    message: string,
    readonly errors: ValidationIssue[] = [],
  ) {
    super(errors.length ? `${message}:\n${errors.map((e) => `  ${e.path || '/'}: ${e.message}`).join('\n')}` : message);
  }
}

// ---- collections ---------------------------------------------------------------------------------------------

/** Shell-style glob (* ? [abc]) over the whole name, case-insensitive (device names are host names). */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') out += '.*';
    else if (ch === '?') out += '.';
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end === -1) out += '\\[';
      else {
        out += `[${glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else out += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`, 'i');
}

export function normalizeMac(text: string): string {
  return text.replace(/-/g, ':').toUpperCase();
}

/** Checks rules (a bad regular expression is a 400, not a crash at evaluation time). */
export function checkRules(rules: CollectionRule[], base = '/rules'): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  rules.forEach((r, i) => {
    if (r.type === 'name-regex') {
      try {
        new RegExp(r.pattern, 'i');
      } catch (err) {
        issues.push({ path: `${base}/${i}/pattern`, message: `not a valid regular expression: ${(err as Error).message}` });
      }
    }
  });
  return issues;
}

export function ruleMatches(rule: CollectionRule, device: DeviceRecord): boolean {
  switch (rule.type) {
    case 'name-glob':
      return globToRegExp(rule.pattern).test(device.name);
    case 'name-regex':
      return new RegExp(rule.pattern, 'i').test(device.name);
    case 'mac-prefix': {
      const prefix = normalizeMac(rule.prefix);
      return device.macAddresses.some((m) => m.startsWith(prefix));
    }
  }
}

/** Why a device is a member: "static", or the rule that matched ("rule 0: name-glob lab-*"). */
export function membership(collection: CollectionRecord, device: DeviceRecord): string | null {
  if (collection.members.includes(device.id)) return 'static';
  const i = collection.rules.findIndex((r) => ruleMatches(r, device));
  if (i === -1) return null;
  const r = collection.rules[i]!;
  return `rule ${i}: ${r.type} ${r.type === 'mac-prefix' ? r.prefix : r.pattern}`;
}

export function members(collection: CollectionRecord, devices: DeviceRecord[]): { device: DeviceRecord; via: string }[] {
  return devices.flatMap((device) => {
    const via = membership(collection, device);
    return via ? [{ device, via }] : [];
  });
}

export function checkVariables(variables: Record<string, string>, base: string): ValidationIssue[] {
  return Object.keys(variables).flatMap((k) =>
    !VARIABLE_NAME.test(k)
      ? [{ path: `${base}/${k}`, message: `"${k}" is not a variable name (letters, digits and _, not starting with a digit)` }]
      : isBuiltinName(k)
        ? [{ path: `${base}/${k}`, message: `"${k}" is reserved: names starting with _ are set by the agent` }]
        : [],
  );
}

// ---- task sequences ------------------------------------------------------------------------------------------

/** Every apply-image step with its path, groups included (inline ones where they are, shared ones once). */
function imageSteps(sequence: TaskSequence): { path: string; image: string }[] {
  const out: { path: string; image: string }[] = [];
  const walk = (steps: Step[], base: string) =>
    steps.forEach((s, i) => {
      const p = `${base}/${i}`;
      if (s.type === 'apply-image') out.push({ path: `${p}/image`, image: s.image });
      if (s.type === 'group' && s.steps) walk(s.steps, `${p}/steps`);
    });
  walk(sequence.steps, '/steps');
  for (const [gid, g] of Object.entries(sequence.groups)) walk(g.steps, `/groups/${gid.replace(/~/g, '~0').replace(/\//g, '~1')}/steps`);
  return out;
}

/**
 * Validates an uploaded document as the given version of the sequence `name` (null: a new sequence, named by
 * the document). The server numbers versions: the document's "version" becomes `version`. Images named
 * literally must be in the library (a reference built from variables is checked when it runs).
 */
export function prepareVersion(
  input: unknown,
  version: number,
  name: string | null,
  library: ImageRecord[],
  comment: string | null,
): { sequence: TaskSequence; version: Omit<TaskSequenceVersion, 'sequenceId' | 'createdAt' | 'version'>; warnings: ValidationIssue[] } {
  const doc = typeof input === 'object' && input !== null && !Array.isArray(input) ? { ...(input as Record<string, unknown>), version } : input;
  const result = validateSequence(doc);
  if (!result.sequence) throw new ModelError('invalid task sequence', result.errors);
  const sequence = result.sequence;
  const errors: ValidationIssue[] = [];
  if (name !== null && sequence.name !== name) errors.push({ path: '/name', message: `this is a new version of "${name}": the document must keep that name (it says "${sequence.name}")` });
  const images: string[] = [];
  for (const { path, image } of imageSteps(sequence)) {
    if (image.includes('%')) {
      result.warnings.push({ path, message: `image "${image}" is built from variables: it is checked when the step runs` });
      continue;
    }
    let ref;
    try {
      ref = parseImageReference(image);
    } catch (err) {
      errors.push({ path, message: (err as Error).message });
      continue;
    }
    const found = library.find((i) => i.name === ref.name);
    if (!found) {
      const have = library.map((i) => i.name).join(', ') || 'none';
      errors.push({ path, message: `image "${ref.name}" is not in the content library (it has: ${have}); import it first (fleetcast image import FILE --name ${ref.name})` });
    } else if (ref.version !== null && found.version !== String(ref.version)) {
      errors.push({ path, message: `image "${ref.name}" version ${ref.version} is not in the library (it has version ${found.version ?? '(none)'})` });
    }
    if (!images.includes(image)) images.push(image);
  }
  if (errors.length) throw new ModelError('invalid task sequence', errors);
  return {
    sequence,
    version: { document: sequence as unknown as Record<string, unknown>, digest: sequenceDigest(sequence), images, comment },
    warnings: result.warnings,
  };
}

/** Image names a version applies (for access-option checks). */
export function imageNames(version: TaskSequenceVersion): string[] {
  return version.images.map((ref) => ref.split('/')[0]!);
}

/** The variables a deployment gives the sequence: collection's, overridden by the deployment's. */
export function deploymentVariables(collection: CollectionRecord, deployment: Pick<DeploymentRecord, 'variables'>): Record<string, string> {
  return { ...collection.variables, ...deployment.variables };
}

export function missingParameters(sequence: TaskSequence, variables: Record<string, string>): string[] {
  const given = new Set(Object.keys(variables).map((k) => k.toUpperCase()));
  return sequence.parameters.filter((p) => !given.has(p.toUpperCase()));
}

// ---- status --------------------------------------------------------------------------------------------------

export function waitingSummary(deviceId: number): DeviceDeploymentSummary {
  return { deviceId, state: 'waiting', currentStep: null, progress: null, reason: null, message: null, steps: [], restarts: 0, startedAt: null, finishedAt: null, lastMessageAt: null };
}

/** Folds one status message into a device's summary of a deployment. */
export function foldStatus(deviceId: number, current: DeviceDeploymentSummary | undefined, m: ReceivedStatus): DeviceDeploymentSummary {
  const s: DeviceDeploymentSummary = current ? structuredClone(current) : waitingSummary(deviceId);
  s.lastMessageAt = s.lastMessageAt && s.lastMessageAt > m.time ? s.lastMessageAt : m.time;
  const finishStep = (outcome: 'succeeded' | 'failed' | 'skipped') => {
    if (!m.step) return;
    s.steps.push({ path: m.step.path, name: m.step.name, type: m.step.type, outcome, ...(m.reason ? { reason: m.reason } : {}), ...(outcome !== 'succeeded' ? { message: m.message } : {}), at: m.time });
    if (s.currentStep?.path === m.step.path) {
      s.currentStep = null;
      s.progress = null;
    }
  };
  switch (m.kind) {
    case 'sequence-started':
      Object.assign(s, { state: 'running', startedAt: m.time, finishedAt: null, reason: null, message: null, steps: [], currentStep: null, progress: null, restarts: 0 });
      break;
    case 'sequence-resumed':
      if (s.state === 'restart-pending') s.restarts++;
      s.state = 'running';
      s.startedAt ??= m.time;
      break;
    case 'step-started':
      if (m.step && m.step.type !== 'group') {
        const d = m.details ?? {};
        s.currentStep = { path: m.step.path, name: m.step.name, type: m.step.type, ordinal: typeof d.ordinal === 'number' ? d.ordinal : null, total: typeof d.total === 'number' ? d.total : null };
        s.progress = null;
      }
      if (s.state === 'waiting') s.state = 'running';
      break;
    case 'step-progress': {
      const p = m.progress;
      if (!p) break;
      let rateBps: number | null = null;
      const prev = s.progress;
      if (p.unit === 'bytes' && prev && prev.phase === p.phase && prev.unit === 'bytes' && p.done >= prev.done) {
        const seconds = (Date.parse(m.time) - Date.parse(prev.at)) / 1000;
        // Bits per second, like every rate fleetcast shows; smoothed so one late message does not swing it.
        if (seconds > 0) rateBps = prev.rateBps === null ? ((p.done - prev.done) * 8) / seconds : 0.5 * prev.rateBps + 0.5 * (((p.done - prev.done) * 8) / seconds);
        else rateBps = prev.rateBps;
      }
      s.progress = { phase: p.phase, done: p.done, total: p.total, unit: p.unit, rateBps, at: m.time };
      break;
    }
    case 'step-succeeded':
      finishStep('succeeded');
      break;
    case 'step-skipped':
      finishStep('skipped');
      break;
    case 'step-failed':
      finishStep('failed');
      if (!m.continued && m.step?.type !== 'group') {
        s.reason = m.reason ?? null;
        s.message = m.message;
      }
      break;
    case 'restart-requested':
      // The restart is what the step does: it counts as done once asked for (the runner agrees on resume).
      finishStep('succeeded');
      s.state = 'restart-pending';
      s.message = m.message;
      break;
    case 'sequence-succeeded':
      Object.assign(s, { state: 'succeeded', finishedAt: m.time, currentStep: null, progress: null, message: m.message });
      break;
    case 'sequence-failed':
      s.state = 'failed';
      s.finishedAt = m.time;
      s.currentStep = null;
      s.progress = null;
      s.reason ??= m.reason ?? null;
      s.message ??= m.message;
      break;
    case 'step-log':
      break;
  }
  return s;
}

/** Whether a deployment applies to a device now (enabled, available, and the device a member). */
export function applies(d: DeploymentRecord, collection: CollectionRecord, device: DeviceRecord, now: number): boolean {
  if (!d.enabled) return false;
  if (d.availableFrom && Date.parse(d.availableFrom) > now) return false;
  return membership(collection, device) !== null;
}
