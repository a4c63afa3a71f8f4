// Windows Imaging (WIM) files through wimlib's command-line tools (Debian package wimtools): `wiminfo` lists the
// images, `wimverify` decompresses every resource and checks its SHA-1, so a WIM that wimlib cannot apply is refused.
import { spawn } from 'node:child_process';
import { ContentError, interrupted } from './errors.js';
import type { WimImageInfo, WimInfo } from './details.js';

export type { WimImageInfo, WimInfo };

const INSTALL_HINT = "WIM images need wimlib's tools: install them (Debian/Ubuntu: apt-get install wimtools) and import again";

interface ToolRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a wimlib tool; `onOutput` sees stdout as it arrives (wimlib writes progress with carriage returns). */
function runTool(tool: string, args: string[], signal?: AbortSignal, onOutput?: (text: string) => void): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(interrupted());
    // C.UTF-8: untranslated labels, names printed as the UTF-8 they are.
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C.UTF-8' }, signal });
    let stdout = '';
    let stderr = '';
    // A watcher gets progress text as it comes; only a run without one keeps its output (it is parsed afterwards).
    child.stdout.setEncoding('utf8').on('data', (text: string) => (onOutput ? onOutput(text) : (stdout += text)));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.name === 'AbortError') reject(interrupted());
      else if (err.code === 'ENOENT') reject(new ContentError('tool-missing', `${tool} is not installed: ${INSTALL_HINT}`, { cause: err }));
      else reject(new ContentError('unreadable', `cannot run ${tool}: ${err.message}`, { cause: err }));
    });
    // After an abort the 'error' above has already settled the promise; a kill from elsewhere ends with a signal.
    child.on('close', (code, killedBy) => resolve({ code: code ?? 128, stdout, stderr: code === null ? `${stderr}\n${tool} was killed by ${killedBy}` : stderr }));
  });
}

/** wimlib's own words on why it failed, without its warnings about absent integrity tables. */
function wimlibError(run: ToolRun, path: string, label: string): string {
  const lines = run.stderr.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('[WARNING]'));
  // wimlib names the staged copy it was given; the person knows the file by the name they imported.
  return lines.join(' ').replace(/\s+/g, ' ').replaceAll(path, label) || `exit code ${run.code}`;
}

/** Lists the images of the WIM at `path` and refuses split WIMs; `label` names the file in messages. */
export async function readWimInfo(path: string, label: string, signal?: AbortSignal): Promise<WimInfo> {
  const run = await runTool('wiminfo', [path], signal);
  if (run.code !== 0) throw new ContentError('corrupt', `wimlib cannot read ${label}: ${wimlibError(run, path, label)}`);
  const info = parseWimInfo(run.stdout);
  if (info.part && info.part.count > 1) {
    throw new ContentError(
      'unsupported',
      `${label} is part ${info.part.number} of a ${info.part.count}-part split WIM: join the parts first (wimlib-imagex join joined.wim parts*.swm) and import the joined file`,
    );
  }
  if (info.wim.images.length === 0) throw new ContentError('unsupported', `${label} holds no image`);
  return info.wim;
}

/** Reads and checks every resource of the WIM at `path`; `onProgress` follows wimlib's "Verifying file data" count. */
export async function verifyWim(path: string, label: string, signal?: AbortSignal, onProgress?: (done: number, total: number) => void): Promise<void> {
  const run = await runTool('wimverify', [path], signal, (text) => {
    if (!onProgress) return;
    const matches = [...text.matchAll(/Verifying file data: (\d+) (\w+) of (\d+) (\w+)/g)];
    const m = matches.at(-1);
    if (m) onProgress(Number(m[1]) * unitBytes(m[2]!), Number(m[3]) * unitBytes(m[4]!));
  });
  if (run.code !== 0) throw new ContentError('corrupt', `${label} failed wimlib's verification: ${wimlibError(run, path, label)}`);
}

function unitBytes(unit: string): number {
  return { bytes: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 }[unit] ?? 1;
}

/** Parses `wiminfo WIMFILE` text output: a "key: value" header, then one block per image starting at "Index:". */
export function parseWimInfo(text: string): { wim: WimInfo; part?: { number: number; count: number } } {
  const header = new Map<string, string>();
  const blocks: Map<string, string>[] = [];
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z][A-Za-z ]*?):\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    if (key === 'Index') blocks.push(new Map());
    (blocks.at(-1) ?? header).set(key, value);
  }
  const bootIndex = Number(header.get('Boot Index') ?? 0);
  const images = blocks.map((b) => wimImage(b, bootIndex));
  const wim: WimInfo = { images };
  const compression = header.get('Compression');
  if (compression) wim.compression = compression;
  const part = /^(\d+)\/(\d+)$/.exec(header.get('Part Number') ?? '');
  return part ? { wim, part: { number: Number(part[1]), count: Number(part[2]) } } : { wim };
}

function wimImage(b: Map<string, string>, bootIndex: number): WimImageInfo {
  const count = (key: string) => {
    const v = b.get(key);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  };
  const textOf = (key: string) => b.get(key) || undefined;
  const image: WimImageInfo = { index: count('Index') ?? 0, name: b.get('Name') ?? '' };
  const fields: [keyof WimImageInfo, unknown][] = [
    ['description', textOf('Description')],
    ['displayName', textOf('Display Name')],
    ['totalBytes', count('Total Bytes')],
    ['fileCount', count('File Count')],
    ['directoryCount', count('Directory Count')],
    ['architecture', textOf('Architecture')],
    ['editionId', textOf('Edition ID')],
    ['productName', textOf('Product Name')],
    ['languages', textOf('Languages')?.split(/\s+/)],
    ['windowsVersion', b.has('Major Version') ? [count('Major Version'), count('Minor Version'), count('Build')].map((n) => n ?? 0).join('.') : undefined],
    ['bootable', image.index === bootIndex ? true : undefined],
  ];
  for (const [key, value] of fields) if (value !== undefined) (image as unknown as Record<string, unknown>)[key] = value;
  return image;
}
