// udpcast (Debian package udpcast): udp-sender / udp-receiver.
//
// Flags: receivers get --nokbd (no keyboard start) and --no-progress; the sender waits for all receivers
// with --min-receivers N (and starts anyway --max-wait 15 s after the first one), sends its data to the
// run's group with --mcast-data-address, and is limited with --max-bitrate when the uplink is. Discovery
// uses the interface broadcast address (the test LAN sets `brd +`). --rexmit-hello-interval 100: without it
// udp-sender waited about 1.6 s after all receivers had connected before it started sending.

import { debianVersion, ensureCommands } from '../deps.js';
import { pause } from '../proc.js';
import type { RunContext, Tool, ToolOutcome } from './types.js';

export const udpcast: Tool = {
  name: 'udpcast',
  description: 'udpcast 20120424 (udp-sender/udp-receiver), multicast with per-slice acknowledgements',
  check: ({ install }) => ensureCommands(['udp-sender', 'udp-receiver'], 'udpcast', install),
  version: () => debianVersion('udpcast'),
  async run(ctx: RunContext): Promise<ToolOutcome> {
    const { lan } = ctx;
    const common = ['--interface', lan.sender.ifname, '--portbase', String(ctx.port), '--nokbd', '--no-progress'];
    const receiverArgv = (out: string): string[] => ['udp-receiver', '--file', out, ...common, '--rcvbuf', String(8 * 1024 * 1024)];
    const receivers = lan.receivers.map((host) => ctx.start(host, receiverArgv(ctx.outputPath(host)), `udp-receiver-${host.name}`));
    await pause(300, ctx.signal); // let them bind and say hello

    const senderArgv = [
      'udp-sender', '--file', ctx.image.path, ...common,
      '--mcast-data-address', ctx.groups[0],
      '--min-receivers', String(lan.receivers.length), '--max-wait', '15',
      // without it udp-sender idled ~1.6 s after every receiver had connected before starting the transfer
      '--rexmit-hello-interval', '100',
      ...(ctx.rateBits ? ['--max-bitrate', `${Math.max(1, Math.round(ctx.rateBits / 1e6))}m`] : []),
    ];
    ctx.markStart();
    const sender = ctx.start(lan.sender, senderArgv, 'udp-sender');
    for (const proc of receivers) void proc.exited.then((exit) => ctx.receiverDone(proc.host, exit.at));
    const senderExit = await sender.exited;
    // receivers exit right after the sender's final handshake; give stragglers a moment
    await Promise.race([Promise.all(receivers.map((p) => p.exited)), pause(5000, ctx.signal)]);
    const outcome: ToolOutcome = {
      sender: senderExit,
      receivers: new Map(receivers.map((p) => [p.host.name, p.exit ?? 'still running'])),
      argv: { sender: senderArgv.join(' '), receiver: receiverArgv('OUT').join(' ') },
    };
    if (/dropping|Dropping/.test(sender.tail())) ctx.note('udp-sender dropped a receiver');
    if (senderExit.error) outcome.failedToStart = senderExit.error;
    return outcome;
  },
};
