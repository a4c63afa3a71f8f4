// Shared by the content library tests: temp libraries, real images made with the real tools, and a snapshot of
// everything a library holds on disk (to show a failed import changed nothing).
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { findExecutable } from '../../src/testlan/system.js';
import type { ContentStore } from '../../src/content/index.js';

export function tempDir(t: TestContext, prefix = 'fc-content-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** True when `tool` is on the PATH; otherwise skips the test, saying which Debian package provides it. */
export function requireTool(t: TestContext, tool: string, debianPackage: string): boolean {
  if (findExecutable(tool)) return true;
  t.skip(`${tool} not found: apt-get install ${debianPackage} to run this test`);
  return false;
}

export const sha256Hex = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Random bytes followed by a compressible run, so compressed images are smaller but not trivial. */
export function imageBytes(randomPart: number, repeatedPart = 0): Buffer {
  return Buffer.concat([randomBytes(randomPart), Buffer.alloc(repeatedPart, 'fleetcast ')]);
}

export function zstdCompress(input: string, output: string, extra: string[] = []): void {
  execFileSync('zstd', ['-q', '-f', ...extra, input, '-o', output]);
}

/** An ISO made by xorriso (or genisoimage), with an El Torito BIOS and UEFI entry when `bootable`. */
export function makeIso(t: TestContext, dir: string, volumeId: string, bootable: boolean): string | null {
  const tree = join(dir, `iso-tree-${volumeId}`);
  mkdirSync(join(tree, 'boot'), { recursive: true });
  writeFileSync(join(tree, 'readme.txt'), 'fleetcast test medium\n');
  writeFileSync(join(tree, 'boot', 'bios.img'), randomBytes(2048));
  writeFileSync(join(tree, 'boot', 'efi.img'), randomBytes(4096));
  writeFileSync(join(tree, 'payload.bin'), randomBytes(300_000));
  const iso = join(dir, `${volumeId}.iso`);
  const boot = bootable ? ['-b', 'boot/bios.img', '-no-emul-boot', '-boot-load-size', '4', '-eltorito-alt-boot', '-e', 'boot/efi.img', '-no-emul-boot'] : [];
  const args = ['-J', '-V', volumeId, ...boot, '-o', iso, tree];
  if (findExecutable('xorriso')) execFileSync('xorriso', ['-as', 'mkisofs', ...args], { stdio: 'ignore' });
  else if (findExecutable('genisoimage')) execFileSync('genisoimage', ['-quiet', ...args], { stdio: 'ignore' });
  else {
    t.skip('neither xorriso nor genisoimage found: apt-get install xorriso to run this test');
    return null;
  }
  return iso;
}

/** A WIM with two images captured by wimlib; the first carries Windows properties as DISM would write them. */
export function makeWim(dir: string): string {
  const first = join(dir, 'wim-tree-1');
  const second = join(dir, 'wim-tree-2');
  mkdirSync(join(first, 'Windows'), { recursive: true });
  mkdirSync(join(second, 'data', 'more'), { recursive: true });
  writeFileSync(join(first, 'Windows', 'notepad.exe'), randomBytes(20_000));
  writeFileSync(join(second, 'data', 'a.txt'), 'alpha\n');
  writeFileSync(join(second, 'data', 'more', 'b.bin'), randomBytes(50_000));
  writeFileSync(join(second, 'c.txt'), 'gamma\n');
  const wim = join(dir, 'install.wim');
  const props = ['WINDOWS/ARCH=9', 'WINDOWS/EDITIONID=Professional', 'WINDOWS/LANGUAGES/LANGUAGE=en-US', 'WINDOWS/VERSION/MAJOR=10', 'WINDOWS/VERSION/BUILD=19045'];
  execFileSync('wimcapture', [first, wim, 'Windows 10 Pro', 'Professional edition', ...props.flatMap((p) => ['--image-property', p])], { stdio: 'ignore' });
  execFileSync('wimappend', [second, wim, 'Data only'], { stdio: 'ignore' });
  return wim;
}

/** Every file under the library root (objects and tmp) with its size: what "nothing changed" is checked against. */
export function filesOf(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const st = statSync(path);
      if (st.isDirectory()) walk(path);
      else out.push(`${relative(root, path)} ${st.size}`);
    }
  };
  walk(root);
  return out.sort();
}

/** The library as it is now; `unchanged()` asserts it still is (listing and files alike). */
export function snapshot(store: ContentStore): { unchanged: () => void } {
  const listed = JSON.stringify(store.list());
  const files = filesOf(store.root);
  return {
    unchanged() {
      assert.equal(JSON.stringify(store.list()), listed, 'list() changed');
      assert.deepEqual(filesOf(store.root), files, 'files in the library changed');
    },
  };
}
