// The markdown table of `npm run sim`.
import { PACING_SHARE, type RunResult, type Scenario } from './scenario.js';

export type ReportConfig = Pick<Scenario, 'seed' | 'blocks' | 'k' | 'simSymbolSize' | 'nominalSymbolSize' | 'rateBps' | 'delayMs' | 'jitterMs'>;

function fixed(x: number | null, digits: number): string {
  return x === null || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

function scenarioCell(r: RunResult, s: Scenario | undefined, config: ReportConfig): string {
  if (!s) return r.scenario;
  switch (s.name) {
    case 'bursty':
      return `bursty (Gilbert-Elliott, mean burst ${s.burstLength} packets at line rate${s.jitterMs > 0 ? `, jitter ${s.jitterMs} ms` : ''})`;
    case 'late joiner':
      return (
        `late joiner (${s.lateJoiners} joins ${fixed(s.lateJoinMs ?? 0, 0)} ms into the transfer` +
        `${s.blocks !== config.blocks ? `; image ${s.blocks} blocks = ${((s.blocks * s.k * s.nominalSymbolSize) / 1e6).toFixed(1)} MB` : ''})`
      );
    case 'slow receiver':
      return `slow receiver (${s.slowReceivers} at ${fixed((s.slowRateBps ?? 0) / 1e6, 0)} Mbit/s)`;
    default:
      return s.name;
  }
}

export function markdownTable(results: RunResult[], scenarios: Scenario[], config: ReportConfig): string {
  const lines: string[] = [];
  const imageBytes = config.blocks * config.k * config.nominalSymbolSize;
  const physMin = ((imageBytes * 8) / config.rateBps) * 1000;
  const framed = ((config.blocks * config.k * (config.nominalSymbolSize + 62) * 8) / config.rateBps) * 1000;
  lines.push('## fleetcast vs NACK-and-retransmit (simulated, real fleetcast engine)');
  lines.push('');
  lines.push(
    `Image: ${config.blocks} blocks × k=${config.k} × ${config.nominalSymbolSize} B = ${(imageBytes / 1e6).toFixed(2)} MB ` +
      `(simulated with ${config.simSymbolSize}-byte symbols; bytes and link times are charged at ${config.nominalSymbolSize} B per symbol). ` +
      `Uplink ${fixed(config.rateBps / 1e6, 0)} Mbit/s, both senders pace at ${PACING_SHARE * 100} % of it; one-way delays spread over ` +
      `${config.delayMs[0]}–${config.delayMs[1]} ms${config.jitterMs > 0 ? `, jitter ${config.jitterMs} ms` : ''}; ` +
      `loss on every receiver's link in both directions; seed ${config.seed}.`,
  );
  lines.push('');
  lines.push(
    `Physical minimum: **${physMin.toFixed(1)} ms** = image bytes × 8 / uplink rate, *without* framing ` +
      `(${framed.toFixed(1)} ms with fleetcast's 20 B header + 42 B Ethernet/IP/UDP per ${config.nominalSymbolSize} B symbol, ` +
      `i.e. wire/image ≥ ${((config.nominalSymbolSize + 62) / config.nominalSymbolSize).toFixed(3)}). Times are from the start of the transfer.`,
  );
  lines.push('');
  lines.push(
    '| scenario | receivers | loss | policy | done | wire/image | data/image | repair % | feedback | fb/block | NACK/block | p50 ms | last ms | last/min | worst receiver | sim s |',
  );
  lines.push('|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|');
  for (const r of results) {
    const s = scenarios.find((x) => x.name === r.scenario && x.receivers === r.receivers && x.loss * 100 === r.lossPct);
    const done = `${r.completed}/${r.receivers}${r.exact < r.completed ? ` (${r.completed - r.exact} NOT exact)` : ''}`;
    lines.push(
      `| ${scenarioCell(r, s, config)} | ${r.receivers} | ${fixed(r.lossPct, 0)} % | ${r.policy} | ${done} | ${fixed(r.wireOverImage, 3)} | ${fixed(r.dataOverImage, 3)} | ` +
        `${fixed((100 * r.repairPackets) / r.sourcePackets, 1)} | ${r.feedbackPackets} | ${fixed(r.feedbackPerBlock, 1)} | ` +
        `${fixed(r.nackPerBlock, 1)} | ${fixed(r.p50Ms, 1)} | ${fixed(r.lastMs, 1)} | ${fixed(r.lastOverMin, 2)} | ${r.worst} | ${fixed(r.wallMs / 1000, 1)} |`,
    );
  }
  lines.push('');
  lines.push(
    '- **policy**: `fleetcast` is the real engine (src/protocol); `nack` is the baseline in sim/nack.ts: receivers NACK exactly the ' +
      'packets they lack (bitmap per block), the sender retransmits the union once per round, no FEC (udpcast/uftp style).',
  );
  lines.push('- **done**: receivers that completed / all; every completed receiver\'s image is checked byte for byte against the original.');
  lines.push(
    '- **wire/image**: all frames the sender put on the uplink (data and control, 42 B framing each) / image bytes; ' +
      '**data/image** counts data frames only (the per-receiver join/ack/completion handshake weighs a lot on a small image).',
  );
  lines.push('- **repair %**: data packets beyond one copy of the image (parity or retransmissions) / source packets.');
  lines.push(
    '- **feedback**: every datagram the receivers sent (join, status/complete, NACK); **fb/block** is that per block; ' +
      '**NACK/block** counts repair requests only (joins and completions are one or two per receiver whatever the loss).',
  );
  lines.push(
    "- **p50 / last ms**: median and last receiver completion; **last/min**: last completion / physical minimum (the row's own image).",
  );
  lines.push('- **sim s**: wall-clock seconds the simulation took.');
  const clamps = results.filter((r) => r.spinClamps > 0);
  if (clamps.length > 0) {
    lines.push(
      `- Engine livelock broken by the simulator in ${clamps.length} run(s) (${clamps.map((r) => `${r.policy} ${r.scenario} N=${r.receivers} ${fixed(r.lossPct, 0)} %: ${r.spinClamps}`).join('; ')}): ` +
        'a node kept asking to be woken at the current instant; the network moved its wake-up 1 ms on, like a timer tick.',
    );
  }
  return lines.join('\n') + '\n';
}
