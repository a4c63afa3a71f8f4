// Benchmark reports: JSON (everything), a markdown table, and an SVG chart (grouped bars of time and
// wire/image per tool per scenario), written without dependencies.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunRecord } from './harness.js';
import type { Machine } from './machine.js';
import { linkMinimumS, TIME_TARGET, wireTarget, type Scenario } from './scenarios.js';

export interface ToolInfo {
  name: string;
  description: string;
  available: boolean;
  reason: string | null;
  version: string | null;
}

export interface BenchResults {
  version: 1;
  startedAt: string;
  finishedAt: string | null;
  /** 1-minute load average when the run finished */
  loadAverageAtEnd: number | null;
  /** false while the run is still going (the files are rewritten after every scenario) */
  complete: boolean;
  machine: Machine;
  config: {
    quick: boolean;
    sizeMiB: number;
    imageBytes: number;
    timeoutS: number;
    rateFactor: number;
    lossMatch: 'udp' | 'ip';
    mtu: number;
    /** TCP segmentation offload kept on (HTTP faster, but loss and counters per 64 KiB super-packet) */
    tcpOffload: boolean;
    /** Runs of each tool in each scenario (absent in results from before --repeat: 1) */
    repeat?: number;
    /** Variables set in the bench's environment that the tools ran without (see TOOL_ENV_DROPPED) */
    envDropped?: string[];
  };
  tools: ToolInfo[];
  scenarios: Scenario[];
  runs: RunRecord[];
}

const fmt = (x: number | null, digits = 2): string => (x === null ? '–' : x.toFixed(digits));

/** Median and range of one figure over the repeated runs of a tool in a scenario. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: number[]): Spread | null {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v.at(-1)!, n: v.length };
}

/**
 * The runs of one tool in one scenario (several with --repeat). Figures are taken over the runs in which every
 * receiver got the image; how many did not is always shown, never averaged away.
 */
export interface RunSummary {
  runs: RunRecord[];
  ok: RunRecord[];
  /** The runs that ran but did not deliver to every receiver. */
  failed: RunRecord[];
  time: Spread | null;
  wire: Spread | null;
  /** Time from the sender host's first packet. */
  fromFirstPacket: Spread | null;
}

export function summarise(runs: RunRecord[]): RunSummary {
  const ok = runs.filter((r) => r.status === 'ok');
  const failed = runs.filter((r) => r.status !== 'ok' && r.status !== 'not available');
  const figures = (f: (r: RunRecord) => number | null | undefined): Spread | null =>
    spread(ok.map(f).filter((x): x is number => x !== null && x !== undefined));
  return {
    runs,
    ok,
    failed,
    time: figures((r) => r.timeS),
    wire: figures((r) => r.wireRatio),
    fromFirstPacket: figures((r) => (r.timeS === null || r.firstPacketS === null || r.firstPacketS === undefined ? null : r.timeS - r.firstPacketS)),
  };
}

/** A median, followed by the range when there were several runs. */
function fmtSpread(x: Spread | null, digits: number, scale = 1): string {
  if (!x) return '–';
  const median = (x.median / scale).toFixed(digits);
  return x.n > 1 ? `${median} (${(x.min / scale).toFixed(digits)}–${(x.max / scale).toFixed(digits)})` : median;
}

/** "**1 of 3 partial** " (how many runs did not deliver, and how they ended), or nothing when every run delivered. */
function failures(s: RunSummary): string {
  if (s.failed.length === 0) return '';
  const statuses = [...new Set(s.failed.map((r) => r.status))].join(', ');
  return `**${s.failed.length} of ${s.runs.length} ${statuses}** `;
}

/** Mean size of the frames the sender put on the wire (bytes), when known. */
function meanFrameBytes(run: RunRecord): number | null {
  return run.senderTxBytes !== null && run.senderTxFrames ? run.senderTxBytes / run.senderTxFrames : null;
}

function receiversSummary(run: RunRecord): string {
  const bad = run.receiverDetails.filter((d) => d.result !== 'ok');
  return bad.map((d) => `${d.host}: ${d.result}${d.result === 'truncated' ? ` (${(d.bytes / 2 ** 20).toFixed(1)} MiB)` : ''}, ${d.ended}`).join('; ');
}

export function markdown(results: BenchResults): string {
  const m = results.machine;
  const c = results.config;
  const scenarios = results.scenarios.filter((s) => results.runs.some((r) => r.scenario === s.name));
  const mtuOf = (s: Scenario): number => s.mtu ?? c.mtu;
  const mixedMtu = scenarios.some((s) => mtuOf(s) !== c.mtu);
  const lines: string[] = [];
  lines.push(`# fleetcast benchmark${c.quick ? ' (quick)' : ''}`);
  lines.push('');
  lines.push(`- date: ${results.startedAt}${results.complete ? '' : ' (incomplete: run still going or interrupted)'}`);
  lines.push(`- machine: ${m.nproc} CPUs (\`nproc\`), ${m.cpuModel}, ${m.memoryGiB} GiB memory, kernel ${m.kernel}, ${m.os}, node ${m.node}`);
  lines.push(
    `- load average (1 min) at start ${m.loadAverage[0] ?? '?'}${results.loadAverageAtEnd !== null ? `, at end ${results.loadAverageAtEnd}` : ''} ` +
      '(anything else running on the machine competes with the emulated LAN and skews the times)',
  );
  lines.push(
    `- image: ${c.sizeMiB} MiB of random (incompressible) data; tools are told to send at ${Math.round(c.rateFactor * 100)} % of a limited uplink; ` +
      `loss applies to ${c.lossMatch === 'ip' ? 'every IPv4 packet (TCP too)' : 'UDP'} on each receiver's ingress; MTU ${c.mtu}${mixedMtu ? ' unless the scenario has its own (MTU column)' : ''}; ` +
      `TCP segmentation offload ${c.tcpOffload ? 'on (HTTP loss and counters per 64 KiB super-packet)' : 'off (one frame per packet, as on a wire)'}; time limit ${c.timeoutS} s per run`,
  );
  lines.push(
    '- time = sender start until the last receiver holds a byte-exact image (sha256); wire/image = bytes sent by the sender host\'s interface (kernel counters) / image bytes; ' +
      'CPU = seconds used by all processes of the sender host and, summed, of the receiver hosts (cgroup accounting)',
  );
  if (c.envDropped?.length) {
    lines.push(
      `- the tools ran without ${c.envDropped.join(', ')}, set in this environment: it changes no transfer but costs every Node process at its start (bench/proc.ts)`,
    );
  }
  const repeats = c.repeat ?? 1;
  if (repeats > 1) {
    lines.push(
      `- ${repeats} runs of each tool in each scenario, the tools in a rotating order; the tables give the median and, in brackets, the range over the runs in which every receiver got the image, and how many did not`,
    );
  }
  lines.push('');
  lines.push('| tool | version | available |');
  lines.push('| --- | --- | --- |');
  for (const t of results.tools) lines.push(`| ${t.name} | ${t.version ?? '–'} | ${t.available ? 'yes' : `no: ${t.reason ?? ''}`} |`);
  lines.push('');

  const tools = results.tools.map((t) => t.name);
  const summaryOf = (s: Scenario, tool: string): RunSummary | null => {
    const runs = results.runs.filter((x) => x.scenario === s.name && x.tool === tool);
    return runs.length ? summarise(runs) : null;
  };
  const mtuHead = mixedMtu ? ' MTU |' : '';
  const mtuCell = (s: Scenario): string => (mixedMtu ? ` ${mtuOf(s)} |` : '');
  lines.push('## Summary (time s / wire÷image)');
  lines.push('');
  lines.push(`| scenario |${mtuHead} ${tools.join(' | ')} |`);
  lines.push(`| --- |${mixedMtu ? ' ---: |' : ''} ${tools.map(() => '---').join(' | ')} |`);
  for (const s of scenarios) {
    const cells = tools.map((tool) => {
      const x = summaryOf(s, tool);
      if (!x) return '';
      if (x.runs.every((r) => r.status === 'not available')) return 'n/a';
      const r = x.runs[0]!;
      if (x.runs.length > 1) return `${failures(x)}${fmtSpread(x.time, 2)} / ${fmtSpread(x.wire, 2)}`;
      if (r.status === 'ok') return `${fmt(r.timeS)} / ${fmt(r.wireRatio)}`;
      return `**${r.status}** ${r.correct}/${r.receivers} / ${fmt(r.wireRatio)}`;
    });
    lines.push(`| ${s.name} |${mtuCell(s)} ${cells.join(' | ')} |`);
  }
  lines.push('');
  const targeted = scenarios.filter((s) => wireTarget(s) !== null);
  if (targeted.length > 0) {
    lines.push('## Wire target (wire÷image ≤ 1 + p + 0.02 at random loss p)');
    lines.push('');
    lines.push('Runs where every receiver got the image; ✓ met, ✗ not met. Ethernet, IP and UDP headers count: about 4 % of the image at MTU 1500 (so no tool can meet it there), under 1 % at MTU 9000.');
    lines.push('');
    lines.push(`| scenario | MTU | target | ${tools.join(' | ')} |`);
    lines.push(`| --- | ---: | ---: | ${tools.map(() => '---').join(' | ')} |`);
    for (const s of targeted) {
      const target = wireTarget(s) as number;
      const cells = tools.map((tool) => {
        const x = summaryOf(s, tool);
        if (!x?.wire) return '–';
        return `${failures(x)}${fmtSpread(x.wire, 3)} ${x.wire.median <= target ? '✓' : '✗'}`;
      });
      lines.push(`| ${s.name} | ${mtuOf(s)} | ${target.toFixed(2)} | ${cells.join(' | ')} |`);
    }
    lines.push('');
  }
  const timed = scenarios.filter((s) => linkMinimumS(s, results.config.imageBytes) !== null);
  if (timed.length > 0) {
    lines.push(`## Time target (time ≤ ${TIME_TARGET} × the link's physical minimum)`);
    lines.push('');
    lines.push(
      `Physical minimum = image bits ÷ uplink rate (no headers, no repair). Time ÷ minimum per run where every receiver got the image; ✓ met, ✗ not met. ` +
        `Tools were told ${Math.round(results.config.rateFactor * 100)} % of the uplink` +
        (results.config.rateFactor < 1 ? `: sending the image alone then takes ${fmt(1 / results.config.rateFactor, 3)} × the minimum (--rate-factor 1 tests the target at the full link rate).` : '.') +
        ' After the dot: the same from the sender host\'s first packet on the LAN, that is without the time the sender process took to start.',
    );
    lines.push('');
    lines.push(`| scenario | MTU | minimum s | ${tools.join(' | ')} |`);
    lines.push(`| --- | ---: | ---: | ${tools.map(() => '---').join(' | ')} |`);
    for (const s of timed) {
      const minimum = linkMinimumS(s, results.config.imageBytes) as number;
      const cells = tools.map((tool) => {
        const x = summaryOf(s, tool);
        if (!x?.time) return '–';
        const fromFirstPacket = x.fromFirstPacket ? ` · ${fmtSpread(x.fromFirstPacket, 3, minimum)}` : '';
        return `${failures(x)}${fmtSpread(x.time, 3, minimum)} ${x.time.median / minimum <= TIME_TARGET ? '✓' : '✗'}${fromFirstPacket}`;
      });
      lines.push(`| ${s.name} | ${mtuOf(s)} | ${fmt(minimum, 2)} | ${cells.join(' | ')} |`);
    }
    lines.push('');
  }
  lines.push('## All runs');
  lines.push('');
  lines.push('payload B = image bytes per data packet the tool was configured for; frame B = mean size of the frames the sender host sent.');
  lines.push('');
  lines.push('| scenario | tool | status | time s | wire/image | payload B | frame B | sender CPU s | receivers CPU s (sum) | correct | how the others ended / notes |');
  lines.push('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const s of scenarios) {
    for (const r of results.runs.filter((x) => x.scenario === s.name)) {
      const notes = [r.reason, receiversSummary(r), ...r.notes].filter(Boolean).join('; ').replace(/\|/g, '\\|');
      lines.push(
        `| ${s.name} | ${r.tool}${repeats > 1 && r.repeat !== undefined ? ` #${r.repeat + 1}` : ''} | ${r.status} | ${fmt(r.timeS)} | ${fmt(r.wireRatio)} | ${r.payloadBytes ?? '–'} | ${fmt(meanFrameBytes(r), 0)} | ${fmt(r.senderCpuS)} | ${fmt(r.receiversCpuS)} | ${r.status === 'not available' ? '–' : `${r.correct}/${r.receivers}`} | ${notes} |`,
      );
    }
  }
  lines.push('');
  lines.push('## Scenarios');
  lines.push('');
  for (const s of scenarios) lines.push(`- \`${s.name}\`: ${s.description}`);
  lines.push('');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// SVG

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#9c755f'];

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceMax(value: number): { max: number; step: number } {
  if (!(value > 0)) return { max: 1, step: 0.25 };
  const raw = value / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) ?? 10 * mag;
  return { max: Math.ceil(value / step) * step, step };
}

export function svgChart(results: BenchResults): string {
  const tools = results.tools.map((t) => t.name);
  const scenarios = results.scenarios.filter((s) => results.runs.some((r) => r.scenario === s.name));
  const barW = 14;
  const groupGap = 18;
  const groupW = Math.max(1, tools.length) * barW + groupGap;
  const left = 60;
  const right = 130; // room for the last rotated scenario label
  const panelH = 200;
  const top = 84;
  const panelGap = 40;
  const labelH = 120;
  const title = `fleetcast benchmark: ${results.config.sizeMiB} MiB image, ${results.machine.nproc} CPUs, ${results.startedAt.slice(0, 10)}`;
  const legendW = tools.reduce((w, t) => w + 24 + t.length * 7, 0);
  const width = Math.ceil(left + right + Math.max(scenarios.length * groupW, legendW, title.length * 8, 430));
  const height = top + panelH + panelGap + panelH + labelH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  out.push('<defs>');
  tools.forEach((_, i) => {
    const color = COLORS[i % COLORS.length];
    out.push(
      `<pattern id="hatch${i}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/><line x1="0" y1="0" x2="0" y2="6" stroke="${color}" stroke-width="3"/></pattern>`,
    );
  });
  out.push('</defs>');
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  out.push(
    `<text x="${left}" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`,
  );
  // legend
  let lx = left;
  tools.forEach((tool, i) => {
    out.push(`<rect x="${lx}" y="28" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 16}" y="38">${esc(tool)}</text>`);
    lx += 24 + tool.length * 7;
  });
  out.push(`<rect x="${left}" y="46" width="12" height="12" fill="url(#hatch0)" stroke="#999"/>`);
  out.push(`<text x="${left + 16}" y="56">not every receiver got a correct image (time: last correct one)</text>`);

  const panel = (y0: number, title: string, value: (r: RunRecord) => number | null, reference?: number): void => {
    const values = results.runs.map(value).filter((v): v is number => v !== null);
    const { max, step } = niceMax(Math.max(reference ?? 0, ...values));
    const y = (v: number): number => y0 + panelH - (v / max) * panelH;
    out.push(`<text x="${left}" y="${y0 - 6}" font-weight="bold">${esc(title)}</text>`);
    for (let v = 0; v <= max + 1e-9; v += step) {
      out.push(`<line x1="${left}" x2="${width - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`);
      out.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${Number(v.toFixed(3))}</text>`);
    }
    if (reference !== undefined) {
      out.push(`<line x1="${left}" x2="${width - right}" y1="${y(reference).toFixed(1)}" y2="${y(reference).toFixed(1)}" stroke="#999" stroke-dasharray="4 3"/>`);
    }
    out.push(`<line x1="${left}" x2="${left}" y1="${y0}" y2="${y0 + panelH}" stroke="#333"/>`);
    out.push(`<line x1="${left}" x2="${width - right}" y1="${y0 + panelH}" y2="${y0 + panelH}" stroke="#333"/>`);
    scenarios.forEach((s, gi) => {
      tools.forEach((tool, ti) => {
        // With --repeat, the median of several runs' figures; hatched when any run did not deliver.
        const runs = results.runs.filter((r) => r.scenario === s.name && r.tool === tool && r.status !== 'not available');
        const x = left + groupGap / 2 + gi * groupW + ti * barW;
        if (runs.length === 0) {
          out.push(`<text x="${x + barW / 2}" y="${y0 + panelH - 4}" text-anchor="middle" font-size="8" fill="#999">n/a</text>`);
          return;
        }
        const { ok } = summarise(runs);
        const delivered = ok.length;
        // The runs that delivered to every receiver, as in the tables; only when none did, the others' figures.
        const figures = spread((delivered ? ok : runs).map(value).filter((v): v is number => v !== null));
        if (figures === null) {
          out.push(`<text x="${x + barW / 2}" y="${y0 + panelH - 4}" text-anchor="middle" font-size="9" fill="#c00">✗</text>`);
          return;
        }
        const v = figures.median;
        const fill = delivered === runs.length ? COLORS[ti % COLORS.length] : `url(#hatch${ti})`;
        const h = Math.max(1, (v / max) * panelH);
        const about =
          runs.length === 1
            ? `${runs[0]!.status}, ${runs[0]!.correct}/${runs[0]!.receivers} correct`
            : `median of ${figures.n}, ${figures.min}–${figures.max}; ${delivered} of ${runs.length} runs delivered to every receiver`;
        out.push(
          `<rect x="${x + 1}" y="${(y0 + panelH - h).toFixed(1)}" width="${barW - 2}" height="${h.toFixed(1)}" fill="${fill}" stroke="${COLORS[ti % COLORS.length]}"><title>${esc(`${s.name} ${tool}: ${v} (${about})`)}</title></rect>`,
        );
        const ly = y0 + panelH - h - 3;
        const lxm = x + barW / 2 + 3;
        out.push(`<text x="${lxm.toFixed(1)}" y="${ly.toFixed(1)}" font-size="8" transform="rotate(-90 ${lxm.toFixed(1)} ${ly.toFixed(1)})">${v < 10 ? v.toFixed(2) : v.toFixed(1)}</text>`);
      });
    });
  };
  panel(top + 10, 'time until the last receiver has a correct image (s)', (r) => (r.status === 'ok' ? r.timeS : r.lastCorrectS));
  panel(top + 10 + panelH + panelGap, 'bytes on the sender\'s wire / image bytes', (r) => r.wireRatio, 1);
  // scenario labels
  const labelY = top + 10 + panelH + panelGap + panelH + 8;
  scenarios.forEach((s, gi) => {
    const x = left + groupGap / 2 + gi * groupW + (tools.length * barW) / 2;
    out.push(`<text x="${x}" y="${labelY}" transform="rotate(50 ${x} ${labelY})">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Writes results as JSON, markdown and SVG under outDir (a time-stamped set and latest.*). Returns the paths. */
export function writeReports(outDir: string, stamp: string, results: BenchResults): string[] {
  mkdirSync(outDir, { recursive: true });
  const files: Array<[string, string]> = [
    ['json', `${JSON.stringify(results, null, 2)}\n`],
    ['md', markdown(results)],
    ['svg', svgChart(results)],
  ];
  const written: string[] = [];
  for (const [ext, content] of files) {
    for (const name of [`bench-${stamp}.${ext}`, `latest.${ext}`]) {
      const path = join(outDir, name);
      writeFileSync(path, content);
      if (name.startsWith('bench-')) written.push(path);
    }
  }
  return written;
}
