// The step engine without disks: commands, variables, conditions, continueOnError, groups, restart and
// resume from the state file, and the exact failure reasons. Real processes, real files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSequence } from '../../src/agent/sequence.js';
import { readState } from '../../src/agent/state.js';
import { runSequence, RunnerSetupError, type RunOptions } from '../../src/agent/runner.js';
import { DirectoryContentProvider } from '../../src/agent/content.js';
import type { StatusMessage } from '../../src/agent/report.js';

const machine = { deviceName: 'pc-07', macAddresses: ['52:54:00:12:34:56'], serialNumber: 'SN123', uuid: '4C4C4544-0000', architecture: 'x64' };

function setup(t: { after: (fn: () => void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'fc-agent-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const messages: StatusMessage[] = [];
  const options = (doc: unknown, extra: Partial<RunOptions> = {}): RunOptions => ({
    sequence: parseSequence(doc),
    statePath: join(dir, 'state.json'),
    logPath: join(dir, 'agent.log'),
    workDir: join(dir, 'work'),
    targets: [],
    content: new DirectoryContentProvider(join(dir, 'media')),
    reporter: { report: (m) => void messages.push(m) },
    machine,
    deploymentId: 'DEP-1',
    ...extra,
  });
  return { dir, messages, options, out: join(dir, 'out.txt') };
}

const seq = (steps: unknown[], extra: Record<string, unknown> = {}) => ({ formatVersion: 1, name: 'test', version: 1, steps, ...extra });

test('commands, variables, built-ins, conditions and environment', async (t) => {
  const { options, out, messages } = setup(t);
  const result = await runSequence(
    options(
      seq(
        [
          { type: 'set-variable', variable: 'Greeting', value: 'hello %_DeviceName%' },
          { type: 'run-command', name: 'write', command: `printf '%s|%s|%s\\n' "$G" "%_MACAddress%" "%_DeploymentID%/%_StepName%" >> ${out}; echo "logged $G"`, environment: { G: '%Greeting%' } },
          { type: 'run-command', name: 'skipped', command: `echo no >> ${out}`, condition: { variable: 'Site', equals: 'Branch' } },
          { type: 'run-command', name: 'argv', command: ['/bin/sh', '-c', `echo "$1" >> ${out}`, 'sh', '%Site% 100%'], condition: { variable: 'Site', matches: '^H' } },
          { type: 'run-command', name: 'disabled', command: `echo no >> ${out}`, disabled: true },
        ],
        { variables: { Site: 'HQ' } },
      ),
    ),
  );
  assert.equal(result.status, 'succeeded');
  assert.equal(readFileSync(out, 'utf8'), 'hello pc-07|52:54:00:12:34:56|DEP-1/write\nHQ 100%\n');
  assert.deepEqual(result.steps.map((s) => s.outcome), ['succeeded', 'succeeded', 'skipped', 'succeeded', 'skipped']);
  assert.match(result.steps[2]!.message!, /condition Site equals "Branch" is false/);
  assert.deepEqual(messages.map((m) => m.kind).filter((k) => k !== 'step-log'), [
    'sequence-started',
    'step-started', 'step-succeeded',
    'step-started', 'step-succeeded',
    'step-skipped',
    'step-started', 'step-succeeded',
    'step-skipped',
    'sequence-succeeded',
  ]);
  assert.equal(readState(options(seq([{ type: 'restart' }])).statePath)!.status, 'succeeded');
  assert.match(readFileSync(options(seq([{ type: 'restart' }])).logPath, 'utf8'), /\| logged hello pc-07/, 'command output is in the log file');
});

test('exit codes, success codes, timeout, continueOnError and groups', async (t) => {
  const { options, out, messages } = setup(t);
  const result = await runSequence(
    options(
      seq([
        { type: 'run-command', name: 'reboot-needed', command: 'exit 3010', successCodes: [0, 3010 % 256] },
        { type: 'run-command', name: 'fails', command: 'echo some output; echo oops >&2; exit 3', continueOnError: true },
        { type: 'run-command', name: 'after', command: `echo "last=%_LastStepSucceeded% code=%_LastExitCode%" >> ${out}` },
        {
          type: 'group',
          name: 'Tolerant group',
          continueOnError: true,
          steps: [
            { type: 'run-command', name: 'slow', command: 'sleep 30', timeoutSeconds: 0.3 },
            { type: 'run-command', name: 'never', command: `echo never >> ${out}` },
          ],
        },
        { type: 'run-command', name: 'then', command: `echo "group ok=%_LastStepSucceeded%" >> ${out}` },
        { type: 'group', name: 'Strict group', steps: [{ type: 'run-command', name: 'missing', command: ['/nonexistent/tool'] }] },
        { type: 'run-command', name: 'not reached', command: `echo unreachable >> ${out}` },
      ]),
    ),
  );
  assert.equal(result.status, 'failed');
  assert.equal(readFileSync(out, 'utf8'), 'last=false code=3\ngroup ok=false\n');
  const byName = Object.fromEntries(result.steps.map((s) => [s.name, s]));
  assert.equal(byName['reboot-needed']!.outcome, 'succeeded');
  assert.equal(byName.fails!.reason, 'exit-code');
  assert.match(byName.fails!.message!, /^command exit code 3 \(not in success codes 0\); last output:\nsome output\noops$/);
  assert.equal(byName.fails!.continued, true);
  assert.equal(byName.slow!.reason, 'timeout');
  assert.match(byName.slow!.message!, /did not finish within 0.3 s/);
  assert.equal(byName.never!.outcome, 'not-run');
  assert.equal(byName['Tolerant group']!.outcome, 'failed');
  assert.equal(byName['Tolerant group']!.continued, true);
  assert.equal(byName.missing!.reason, 'tool-missing');
  assert.equal(byName['Strict group']!.outcome, 'failed');
  assert.equal(byName['not reached']!.outcome, 'not-run');
  assert.equal(result.failure?.step.name, 'missing');
  assert.equal(result.failure?.reason, 'tool-missing');
  const failed = messages.filter((m) => m.kind === 'step-failed');
  assert.deepEqual(failed.map((m) => [m.step!.name, m.reason, m.continued]), [
    ['fails', 'exit-code', true],
    ['slow', 'timeout', false],
    ['Tolerant group', 'timeout', true],
    ['missing', 'tool-missing', false],
    ['Strict group', 'tool-missing', false],
  ]);
  assert.equal(failed[0]!.exitCode, 3);
  assert.equal(messages.at(-1)!.kind, 'sequence-failed');
});

test('restart: the runner stops after the restart step; a new runner continues after it and never redoes steps', async (t) => {
  const { options, out, messages } = setup(t);
  const doc = seq(
    [
      { type: 'run-command', name: 'before', command: `echo before-%Counter% >> ${out}` },
      { type: 'set-variable', variable: 'Counter', value: '2' },
      {
        type: 'group',
        name: 'outer',
        condition: { variable: 'Counter', equals: '2' },
        steps: [
          { type: 'restart', name: 'reboot', message: 'restarting %_DeviceName%' },
          // After the restart the condition of the group would be false, but the group was already entered.
          { type: 'set-variable', variable: 'Counter', value: '3' },
          { type: 'run-command', name: 'inside', command: `echo inside-%Counter% >> ${out}` },
        ],
      },
      { type: 'run-command', name: 'after', command: `echo after-%Counter% >> ${out}` },
    ],
    { variables: { Counter: '1' } },
  );
  const first = await runSequence(options(doc));
  assert.equal(first.status, 'restart-requested');
  assert.equal(readFileSync(out, 'utf8'), 'before-1\n');
  const state = readState(options(doc).statePath)!;
  assert.equal(state.status, 'restart-pending');
  assert.equal(state.restartStep, '/steps/2/steps/0');
  assert.equal(state.variables.Counter, '2');
  assert.ok(messages.some((m) => m.kind === 'restart-requested' && m.message === 'restarting pc-07'));

  messages.length = 0;
  const second = await runSequence(options(doc));
  assert.equal(second.status, 'succeeded');
  assert.equal(second.resumed, true);
  assert.equal(readFileSync(out, 'utf8'), 'before-1\ninside-3\nafter-3\n');
  assert.equal(messages[0]!.kind, 'sequence-resumed');
  assert.match(messages[0]!.message, /resumed after the restart requested by \/steps\/2\/steps\/0/);
  assert.ok(second.steps.every((s) => s.outcome === 'succeeded'));
  assert.equal(readState(options(doc).statePath)!.restarts, 1);

  const third = await runSequence(options(doc));
  assert.equal(third.alreadyFinished, true);
  assert.equal(third.status, 'succeeded');
  assert.equal(readFileSync(out, 'utf8'), 'before-1\ninside-3\nafter-3\n', 'nothing ran again');
});

test('an interrupted step runs again on resume; completed ones do not', async (t) => {
  const { options, out, dir } = setup(t);
  const marker = join(dir, 'started');
  const fast = join(dir, 'fast');
  const doc = seq([
    { type: 'run-command', name: 'one', command: `echo one >> ${out}` },
    { type: 'run-command', name: 'long', command: `if [ -e ${fast} ]; then echo rerun >> ${out}; else echo long >> ${out}; touch ${marker}; sleep 30; echo finished >> ${out}; fi` },
    { type: 'run-command', name: 'three', command: `echo three >> ${out}` },
  ]);
  const controller = new AbortController();
  const poll = setInterval(() => existsSync(marker) && controller.abort(), 20);
  t.after(() => clearInterval(poll));
  const first = await runSequence(options(doc, { signal: controller.signal }));
  clearInterval(poll);
  assert.equal(first.status, 'interrupted');
  const state = readState(options(doc).statePath)!;
  assert.equal(state.current, '/steps/1');
  assert.deepEqual(Object.keys(state.steps), ['/steps/0']);
  writeFileSync(fast, '');
  const second = await runSequence(options(doc));
  assert.equal(second.status, 'succeeded');
  assert.equal(readFileSync(out, 'utf8'), 'one\nlong\nrerun\nthree\n', 'the interrupted command was stopped (no "finished") and ran again; step one did not');
});

test('setup errors: a state file of another document, missing parameters, reserved variables', async (t) => {
  const { options, dir } = setup(t);
  await assert.rejects(runSequence(options(seq([{ type: 'run-command', command: 'echo %Key%' }], { parameters: ['Key'] }))), (err: unknown) => err instanceof RunnerSetupError && /needs parameter\(s\) Key/.test((err as Error).message));
  await assert.rejects(runSequence(options(seq([{ type: 'restart' }]), { variables: { _DeviceName: 'x' } })), /reserved/);
  assert.equal((await runSequence(options(seq([{ type: 'restart' }])))).status, 'restart-requested');
  await assert.rejects(runSequence(options(seq([{ type: 'restart', name: 'changed' }]))), /belongs to a run of "test" version 1 \(a different document/);
  writeFileSync(join(dir, 'state.json'), '{ torn');
  await assert.rejects(runSequence(options(seq([{ type: 'restart' }]))), /not valid JSON/);
});

test('destructive steps are refused when no target is configured; content errors are exact', async (t) => {
  const { options } = setup(t);
  const result = await runSequence(
    options(
      seq([
        { type: 'partition-disk', disk: 'disk0', layout: 'gpt', partitions: [{ type: 'linux', remaining: true, filesystem: 'ext4' }], continueOnError: true },
        { type: 'apply-image', image: 'win11', destination: { disk: '/dev/sda' }, continueOnError: true },
        { type: 'set-variable', variable: 'P', value: '/dev/sda1' },
        { type: 'apply-settings', partition: 'P', hostname: 'x', continueOnError: true },
      ]),
    ),
  );
  assert.equal(result.status, 'succeeded');
  for (const i of [0, 1, 3]) {
    assert.equal(result.steps[i]!.reason, 'target-not-allowed');
    assert.match(result.steps[i]!.message!, /no target disks are configured on this machine, so destructive steps are refused/);
  }
});
