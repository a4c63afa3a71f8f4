// Variable substitution and condition evaluation, with properties checked on random input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { evaluateCondition, type Condition } from '../../src/agent/conditions.js';
import { planPartitions, sfdiskScript } from '../../src/agent/steps/partition-disk.js';
import { escapeText, parseAssignment, substitute, tokenize, UndefinedVariableError, Variables } from '../../src/agent/variables.js';

test('substitution: references, %% escapes, stray percent signs, case-insensitive names', () => {
  const v = new Variables({ Name: 'pc-01', Dir: 'C:\\Windows' });
  assert.equal(v.substitute('host=%name% dir=%DIR%', 'f'), 'host=pc-01 dir=C:\\Windows');
  assert.equal(v.substitute('100% sure, 50%% off, %not a name%', 'f'), '100% sure, 50% off, %not a name%');
  assert.equal(v.substitute('%%Name%%', 'f'), '%Name%');
  assert.throws(
    () => v.substitute('x %Missing% y', '/steps/3/command'),
    (err: unknown) => err instanceof UndefinedVariableError && err.variable === 'Missing' && /\/steps\/3\/command/.test(err.message),
  );
  assert.throws(() => v.substitute('%_SerialNumber%', 'f'), /built-in variable %_SerialNumber% is not available/);
});

test('property: escaped text substitutes back to itself, whatever it contains', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom('%', 'a', 'B', '_', '1', ' ', '-') , maxLength: 40 }), (text) => {
      assert.equal(substitute(escapeText(text), () => undefined, 'p'), text);
    }),
  );
});

test('property: substituting values never re-expands references inside values', () => {
  const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,5}$/);
  fc.assert(
    fc.property(fc.array(fc.tuple(name, fc.string({ maxLength: 10 })), { minLength: 1, maxLength: 5 }), fc.string({ maxLength: 10 }), (pairs, literal) => {
      const values = new Map(pairs.map(([k, v]) => [k.toUpperCase(), v]));
      const text = pairs.map(([k]) => `%${k}%`).join(escapeText(literal));
      const expected = pairs.map(([k]) => values.get(k.toUpperCase())!).join(literal);
      assert.equal(substitute(text, (n) => values.get(n.toUpperCase()), 'p'), expected);
    }),
  );
});

test('tokenize splits literals and references', () => {
  assert.deepEqual(tokenize('a%B%c%%d%'), [{ literal: 'a' }, { variable: 'B' }, { literal: 'c%d%' }]);
});

test('conditions: equals, notEquals, exists, matches, and/or/not; undefined variables', () => {
  const vars: Record<string, string> = { Model: 'Latitude 7440', Site: 'HQ' };
  const get = (n: string) => vars[n];
  const check = (c: Condition, expected: boolean) => assert.equal(evaluateCondition(c, get), expected, JSON.stringify(c));
  check({ variable: 'Site', equals: 'HQ' }, true);
  check({ variable: 'Site', equals: 'hq' }, false);
  check({ variable: 'Site', equals: 'hq', ignoreCase: true }, true);
  check({ variable: 'Site', notEquals: 'HQ' }, false);
  check({ variable: 'Missing', notEquals: 'HQ' }, true);
  check({ variable: 'Missing', equals: '' }, false);
  check({ variable: 'Missing', exists: false }, true);
  check({ variable: 'Model', matches: '^Latitude \\d{4}$' }, true);
  check({ variable: 'Missing', matches: '.*' }, false);
  check({ and: [{ variable: 'Site', equals: 'HQ' }, { not: { variable: 'Model', matches: 'Precision' } }] }, true);
  check({ or: [{ variable: 'Site', equals: 'Branch' }, { variable: 'Missing', exists: true }] }, false);
});

test('property: not, and/or follow boolean logic (De Morgan)', () => {
  const leaf = fc.record({ variable: fc.constantFrom('A', 'B', 'C'), equals: fc.constantFrom('1', '2') }) as fc.Arbitrary<Condition>;
  const { cond } = fc.letrec<{ cond: Condition }>((tie) => ({
    cond: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.record({ not: tie('cond') }), fc.record({ and: fc.array(tie('cond'), { minLength: 1, maxLength: 3 }) }), fc.record({ or: fc.array(tie('cond'), { minLength: 1, maxLength: 3 }) })),
  }));
  const env = fc.record({ A: fc.constantFrom('1', '2'), B: fc.constantFrom('1', '2') });
  fc.assert(
    fc.property(fc.array(cond, { minLength: 1, maxLength: 3 }), env, (cs, vars) => {
      const get = (n: string) => (vars as Record<string, string>)[n];
      const and = evaluateCondition({ and: cs }, get);
      assert.equal(evaluateCondition({ not: { and: cs } }, get), evaluateCondition({ or: cs.map((c) => ({ not: c })) }, get));
      assert.equal(and, cs.every((c) => evaluateCondition(c, get)));
    }),
  );
});

test('--var assignments', () => {
  assert.deepEqual(parseAssignment('Key=a=b'), ['Key', 'a=b']);
  assert.throws(() => parseAssignment('=x'), /NAME=VALUE/);
  assert.throws(() => parseAssignment('_DeviceName=x'), /reserved/);
});

test('partition plan: MiB alignment, percent of the free space left, remaining, too small', () => {
  const MiB = 2 ** 20;
  const plan = planPartitions(
    'gpt',
    [
      { type: 'efi', size: 100 * MiB + 1, filesystem: 'fat32' },
      { type: 'linux', percent: 50, filesystem: 'ext4' },
      { type: 'linux', remaining: true, filesystem: 'ext4' },
    ],
    1024 * MiB,
    'disk0',
  );
  // 1024 MiB - 1 MiB lead-in - 1 MiB for the backup GPT = 1022 usable; 101 for the first; half of 921 = 460.
  assert.deepEqual(plan.map((p) => p.sizeMiB), [101, 460, 461]);
  assert.equal(
    sfdiskScript('gpt', plan, ['SYSTEM', undefined, 'da"ta']),
    'label: gpt\n\nsize=101MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="SYSTEM"\nsize=460MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\ntype=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="data"\n',
  );
  const mbr = planPartitions('mbr', [{ type: 'basic-data', size: 8 * MiB, filesystem: 'fat32', bootable: true }], 64 * MiB, 'disk0');
  assert.equal(sfdiskScript('mbr', mbr, [undefined]), 'label: dos\n\nsize=8MiB, type=0c, bootable\n');
  assert.throws(
    () => planPartitions('gpt', [{ type: 'linux', size: 100 * MiB, filesystem: 'ext4' }], 64 * MiB, 'disk0 (/dev/loop9)'),
    /disk too small for the partition layout: disk0 \(\/dev\/loop9\) has 62 MiB usable, the partitions need at least 100 MiB/,
  );
});
