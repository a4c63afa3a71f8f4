// Task sequence validation: every problem reported once, at its exact path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePartitionSize, parseSequence, SequenceValidationError, validateSequence } from '../../src/agent/sequence.js';

const base = (steps: unknown[], extra: Record<string, unknown> = {}) => ({ formatVersion: 1, name: 'T', version: 1, steps, ...extra });

function errorsOf(doc: unknown): { path: string; message: string }[] {
  const r = validateSequence(doc);
  assert.equal(r.sequence, null, 'expected the document to be invalid');
  return r.errors;
}

const refresh = {
  formatVersion: 1,
  name: 'Windows refresh',
  version: 3,
  variables: { Org: 'Contoso' },
  parameters: ['ProductKey'],
  groups: { post: { name: 'Post-install', steps: [{ type: 'run-command', command: 'echo %OSDComputerName%' }] } },
  steps: [
    {
      id: 'part',
      type: 'partition-disk',
      disk: 'disk0',
      layout: 'gpt',
      partitions: [
        { type: 'efi', size: '260MiB', label: 'SYSTEM', variable: 'EFIPART' },
        { type: 'msr', size: '16MiB' },
        { type: 'windows', remaining: true, filesystem: 'ntfs', label: 'Windows', variable: 'OSPART' },
      ],
    },
    { id: 'apply', type: 'apply-image', image: 'win11/3', destination: { partition: 'OSPART' }, index: 1 },
    { type: 'apply-settings', partition: 'OSPART', hostname: '%_DeviceName%', files: [{ path: 'Windows/Panther/unattend.xml', template: '<Key>%ProductKey%</Key><Name>%OSDComputerName%</Name>' }] },
    { type: 'restart' },
    { type: 'group', use: 'post', condition: { and: [{ variable: 'Org', equals: 'Contoso' }, { not: { variable: 'SkipPost', exists: true } }] }, continueOnError: true },
  ],
};

test('a complete refresh sequence is valid and keeps its fields', () => {
  const r = validateSequence(refresh);
  assert.deepEqual(r.errors, []);
  const s = r.sequence!;
  assert.equal(s.steps.length, 5);
  const part = s.steps[0]!;
  assert.equal(part.type, 'partition-disk');
  if (part.type === 'partition-disk') {
    assert.equal(part.partitions[0]!.size, 260 * 1024 * 1024);
    assert.equal(part.partitions[0]!.filesystem, 'fat32', 'EFI defaults to fat32');
    assert.equal(part.partitions[1]!.filesystem, 'none');
    assert.equal(part.partitions[2]!.remaining, true);
  }
  assert.deepEqual(s.parameters, ['ProductKey']);
  // The condition reads a variable nothing defines: allowed (that is what "exists" is for), with a warning.
  assert.ok(r.warnings.some((w) => w.path === '/steps/4/condition' && /SkipPost/.test(w.message)));
});

test('unknown step type: reported at the step, with the known types', () => {
  const errors = errorsOf(base([{ type: 'set-variable', variable: 'A', value: '1' }, { type: 'format-disk', disk: 'disk0' }]));
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.path, '/steps/1/type');
  assert.match(errors[0]!.message, /unknown step type "format-disk".*partition-disk/);
});

test('missing required fields and bad types are reported at their paths, all at once', () => {
  const errors = errorsOf(
    base([
      { type: 'run-command' },
      { type: 'apply-image', destination: { partition: 'P' } },
      { type: 'partition-disk', disk: 'disk0', layout: 'gpt', partitions: [{ type: 'linux', size: 'big', filesystem: 'ext4' }] },
      { type: 'run-command', command: 'true', timeoutSeconds: '10', successCodes: [0, 300] },
      { type: 'set-variable', variable: 'X', value: 'a', continueOnEror: true },
    ]),
  );
  const at = (path: string) => errors.find((e) => e.path === path)?.message ?? `nothing at ${path}: ${JSON.stringify(errors)}`;
  assert.match(at('/steps/0/command'), /missing required field "command"/);
  assert.match(at('/steps/1/image'), /missing required field "image"/);
  assert.match(at('/steps/2/partitions/0/size'), /must be a size like "260MiB"/);
  assert.match(at('/steps/3/timeoutSeconds'), /must be a number, got the string "10"/);
  assert.match(at('/steps/3/successCodes'), /exit codes 0-255/);
  assert.match(at('/steps/4/continueOnEror'), /unknown field "continueOnEror"/);
  assert.equal(errors.length, 6, JSON.stringify(errors));
});

test('partition rules: one sizing, remaining only last, MBR limits, filesystem and type pairs', () => {
  const errors = errorsOf(
    base([
      {
        type: 'partition-disk',
        disk: 'disk0',
        layout: 'mbr',
        partitions: [
          { type: 'msr', size: '16MiB' },
          { type: 'basic-data', remaining: true, filesystem: 'ntfs' },
          { type: 'efi', size: '100MiB', percent: 10, filesystem: 'ntfs' },
          { type: 'linux', percent: 50, filesystem: 'fat32', label: 'MUCH-TOO-LONG-LABEL' },
          { type: 'swap', percent: 60 },
        ],
      },
    ]),
  );
  const messages = errors.map((e) => `${e.path}: ${e.message}`).join('\n');
  assert.match(messages, /\/steps\/0\/partitions: an MBR disk holds at most 4 primary partitions, got 5/);
  assert.match(messages, /\/steps\/0\/partitions\/0\/type: an MSR partition exists only on GPT disks/);
  assert.match(messages, /\/steps\/0\/partitions\/1\/remaining: only the last partition/);
  assert.match(messages, /\/steps\/0\/partitions\/2: give exactly one of "size".*got size and percent/);
  assert.match(messages, /\/steps\/0\/partitions\/2\/filesystem: an EFI system partition must be fat32/);
  assert.match(messages, /\/steps\/0\/partitions\/3\/label: a fat32 label has at most 11 characters/);
  assert.match(messages, /\/steps\/0\/partitions: percentages add up to 120 %/);
});

test('duplicate step ids: the second one is the error, naming the first', () => {
  const errors = errorsOf(base([{ id: 'a', type: 'set-variable', variable: 'X', value: '1' }, { type: 'group', steps: [{ id: 'a', type: 'restart' }] }]));
  assert.deepEqual(errors, [{ path: '/steps/1/steps/0/id', message: 'duplicate step id "a" (also used at /steps/0)' }]);
});

test('a cycle in groups is reported with the chain; a missing group names the defined ones', () => {
  const cyclic = base([{ type: 'group', use: 'a' }], {
    groups: {
      a: { steps: [{ type: 'group', use: 'b' }] },
      b: { steps: [{ type: 'group', steps: [{ type: 'group', use: 'a' }] }] },
    },
  });
  const errors = errorsOf(cyclic);
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.match(errors[0]!.message, /group cycle: a → b → a/);
  const self = errorsOf(base([{ type: 'group', use: 'x' }], { groups: { x: { steps: [{ type: 'group', use: 'x' }] } } }));
  assert.match(self[0]!.message, /group cycle: x → x/);
  const missing = errorsOf(base([{ type: 'group', use: 'nope' }], { groups: { x: { steps: [{ type: 'restart' }] } } }));
  assert.deepEqual(missing, [{ path: '/steps/0/use', message: 'no group "nope" in "groups" (defined: x)' }]);
});

test('undefined variables: never defined, defined only later, unknown built-in, inside a used group', () => {
  const errors = errorsOf(
    base(
      [
        { type: 'run-command', command: 'echo %Later% %Nowhere% 100% done %%literal%%' },
        { type: 'set-variable', variable: 'Later', value: 'x' },
        { type: 'run-command', command: ['echo', '%_Nonsense%'] },
        { type: 'group', use: 'g' },
        { type: 'apply-settings', partition: 'NOPART', hostname: 'h' },
      ],
      { groups: { g: { steps: [{ type: 'set-variable', variable: 'Y', value: '%Missing%' }] } } },
    ),
  );
  const messages = errors.map((e) => `${e.path}: ${e.message}`);
  assert.equal(errors.length, 5, messages.join('\n'));
  assert.match(messages[0]!, /^\/steps\/0\/command: variable Later is used before it is defined \(it is set only by a later step\)/);
  assert.match(messages[1]!, /^\/steps\/0\/command: variable Nowhere is used before it is defined: nothing defines it/);
  assert.match(messages[2]!, /^\/steps\/2\/command\/1: variable _Nonsense .*built-ins: _DeviceName/);
  assert.match(messages[3]!, /^\/groups\/g\/steps\/0\/value: variable Missing .*\(group used from \/steps\/3\)/);
  assert.match(messages[4]!, /^\/steps\/4\/partition: variable NOPART/);
});

test('variables are defined by defaults, parameters, set-variable, partition outputs and hostname; names are case-insensitive', () => {
  const r = validateSequence(
    base(
      [
        { type: 'partition-disk', disk: '%TargetDisk%', layout: 'gpt', partitions: [{ type: 'linux', remaining: true, filesystem: 'ext4', variable: 'Root' }] },
        { type: 'apply-settings', partition: 'ROOT', hostname: '%_devicename%-%site%' },
        { type: 'run-command', command: 'echo %osdcomputername% %Key%' },
      ],
      { variables: { TargetDisk: 'disk0', Site: 'x' }, parameters: ['Key'] },
    ),
  );
  assert.deepEqual(r.errors, []);
});

test('document-level problems: JSON, format version, reserved names, empty steps', () => {
  assert.throws(() => parseSequence('nope'), SequenceValidationError);
  const errors = errorsOf({ formatVersion: 2, name: '', version: 0, variables: { _Mine: 'x', 'bad name': 'y' }, steps: [] });
  const text = errors.map((e) => `${e.path}: ${e.message}`).join('\n');
  assert.match(text, /\/formatVersion: this agent reads format version 1/);
  assert.match(text, /\/name: must not be empty/);
  assert.match(text, /\/version: must be from 1/);
  assert.match(text, /\/variables\/_Mine: "_Mine" is reserved/);
  assert.match(text, /\/variables\/bad name: "bad name" is not a variable name/);
  assert.match(text, /\/steps: a task sequence needs at least one step/);
  assert.match(errorsOf(base([{ type: 'set-variable', variable: '_StepName', value: 'x' }]))[0]!.message, /reserved/);
  assert.match(errorsOf(base([{ type: 'restart', condition: { variable: 'A', matches: '(' } }]))[0]!.message, /not a valid regular expression/);
  assert.match(errorsOf(base([{ type: 'restart', condition: { variable: 'A', equals: 'x', exists: true } }]))[0]!.message, /a condition is/);
});

test('partition sizes use binary units', () => {
  assert.equal(parsePartitionSize('260MiB'), 260 * 2 ** 20);
  assert.equal(parsePartitionSize('16M'), 16 * 2 ** 20);
  assert.equal(parsePartitionSize('1.5 GiB'), 1.5 * 2 ** 30);
  assert.equal(parsePartitionSize('4096'), 4096);
  assert.equal(parsePartitionSize('12 parsecs'), null);
});
