// `fleetcast agent validate` and `run-sequence` as real processes: exit codes, JSON output, restart and resume.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function fleetcast(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 60_000, env: { ...process.env, FLEETCAST_AGENT_DIR: join(cwd, 'agent-data') } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'fc-agent-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('validate: exit 0 for a valid document, 1 with every error and its path (text and JSON)', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'good.json'), JSON.stringify({ formatVersion: 1, name: 'ok', version: 2, steps: [{ type: 'restart' }] }));
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ formatVersion: 1, name: 'bad', version: 1, steps: [{ type: 'reboot' }, { type: 'run-command', command: 'echo %Nope%' }] }));
  writeFileSync(join(dir, 'broken.json'), '{ "formatVersion": 1,');
  const good = fleetcast(['agent', 'validate', 'good.json'], dir);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stderr, /good.json: valid \("ok" version 2\)/);
  const bad = fleetcast(['agent', 'validate', 'bad.json'], dir);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /error: \/steps\/0\/type: unknown step type "reboot"/);
  assert.match(bad.stderr, /error: \/steps\/1\/command: variable Nope is used before it is defined/);
  const json = fleetcast(['agent', 'validate', 'bad.json', '--json'], dir);
  assert.equal(json.code, 1);
  const parsed = JSON.parse(json.stdout);
  assert.equal(parsed.valid, false);
  assert.deepEqual(parsed.errors.map((e: { path: string }) => e.path), ['/steps/0/type', '/steps/1/command']);
  const broken = fleetcast(['agent', 'validate', 'broken.json'], dir);
  assert.equal(broken.code, 1);
  assert.match(broken.stderr, /cannot read broken.json as JSON/);
});

test('run-sequence: restart exits 3, the same command continues and exits 0; failures exit 2 with the reason', (t) => {
  const dir = tempDir(t);
  const out = join(dir, 'out.txt');
  writeFileSync(
    join(dir, 'seq.json'),
    JSON.stringify({
      formatVersion: 1,
      name: 'Two phases',
      version: 1,
      parameters: ['Who'],
      steps: [
        { type: 'run-command', name: 'first', command: `echo first %Who% >> ${out}` },
        { type: 'restart', name: 'reboot' },
        { type: 'run-command', name: 'second', command: `echo second >> ${out}` },
      ],
    }),
  );
  const missing = fleetcast(['agent', 'run-sequence', 'seq.json'], dir);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /needs parameter\(s\) Who .*--var Who=/);
  const first = fleetcast(['agent', 'run-sequence', 'seq.json', '--var', 'Who=me'], dir);
  assert.equal(first.code, 3, first.stderr);
  assert.match(first.stderr, /\[1\/3\] first \(run-command\)/);
  assert.match(first.stderr, /restart requested/);
  const second = fleetcast(['agent', 'run-sequence', 'seq.json', '--json'], dir);
  assert.equal(second.code, 0, second.stderr);
  const summary = JSON.parse(second.stdout);
  assert.equal(summary.status, 'succeeded');
  assert.equal(summary.resumed, true);
  assert.equal(summary.variables.Who, 'me', 'deployment variables live in the state file');
  assert.equal(readFileSync(out, 'utf8'), 'first me\nsecond\n');
  assert.match(readFileSync(summary.logPath, 'utf8'), /restart-requested/);
  const again = fleetcast(['agent', 'run-sequence', 'seq.json'], dir);
  assert.equal(again.code, 0);
  assert.match(again.stderr, /already succeeded/);

  writeFileSync(join(dir, 'fail.json'), JSON.stringify({ formatVersion: 1, name: 'Fails', version: 1, steps: [{ type: 'run-command', name: 'boom', command: 'exit 7' }] }));
  const failed = fleetcast(['agent', 'run-sequence', 'fail.json', '--json'], dir);
  assert.equal(failed.code, 2);
  const result = JSON.parse(failed.stdout);
  assert.equal(result.failure.reason, 'exit-code');
  assert.match(result.failure.message, /command exit code 7 \(not in success codes 0\)/);
  const disk = fleetcast(['agent', 'run-sequence', 'fail.json', '--state', 'other.json', '--target', 'nope=/nonexistent', '--target', 'nope=/x'], dir);
  assert.equal(disk.code, 1);
  assert.match(disk.stderr, /target name "nope" is given twice/);
});
