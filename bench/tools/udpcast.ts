// udpcast (Debian package udpcast): udp-sender / udp-receiver.
//
// Flags: receivers get --nokbd (no keyboard start) and --no-progress; the sender waits for all receivers
// with --min-receivers N (and starts anyway --max-wait 15 s after the first one), sends its data to the
// run's group with --mcast-data-address, and is limited with --max-bitrate when the uplink is. Discovery
// uses the interface broadcast address (the test LAN sets `brd +`). --rexmit-hello-interval 100: without it
// udp-sender waited about 1.6 s after all receivers had connected before it started sending.
// --blocksize fills one frame of the link: its manual calls the default of 1456 the maximum, but udp-sender
// takes larger blocks and does not fit them to the MTU itself (measured on the test LAN: at MTU 9000,
// --blocksize 8956 sends 9000-byte IP packets, 8960 makes the kernel fragment every one of them).

import { debianVersion, ensureCommands } from '../deps.js';
import { pause } from '../proc.js';
import { IPV4_UDP_HEADER_BYTES, commandParams, type CommandParams, type RunContext, type Tool, type ToolOutcome } from './types.js';

/** udpcast's header in front of each data block (measured: see above). */
const UDPCAST_DATA_HEADER_BYTES = 16;

export function udpcastBlockSize(mtu: number): number {
  return mtu - IPV4_UDP_HEADER_BYTES - UDPCAST_DATA_HEADER_BYTES;
}

export function udpcastCommands(p: CommandParams): { sender: string[]; receiver(out: string): string[] } {
  const common = ['--interface', p.ifname, '--portbase', String(p.port), '--nokbd', '--no-progress'];
  return {
    receiver: (out) => ['udp-receiver', '--file', out, ...common, '--rcvbuf', String(8 * 1024 * 1024)],
    sender: [
      'udp-sender', '--file', p.imagePath, ...common,
      '--mcast-data-address', p.groups[0],
      '--min-receivers', String(p.receivers), '--max-wait', '15',
      // without it udp-sender idled ~1.6 s after every receiver had connected before starting the transfer
      '--rexmit-hello-interval', '100',
      '--blocksize', String(udpcastBlockSize(p.mtu)),
      ...(p.rateBits ? ['--max-bitrate', `${Math.max(1, Math.round(p.rateBits / 1e6))}m`] : []),
    ],
  };
}

export const udpcast: Tool = {
  name: 'udpcast',
  description: 'udpcast 20120424 (udp-sender/udp-receiver), multicast with per-slice acknowledgements',
  check: ({ install }) => ensureCommands(['udp-sender', 'udp-receiver'], 'udpcast', install),
  version: () => debianVersion('udpcast'),
  payloadBytes: udpcastBlockSize,
  async run(ctx: RunContext): Promise<ToolOutcome> {
    const { lan } = ctx;
    const { sender: senderArgv, receiver: receiverArgv } = udpcastCommands(commandParams(ctx));
    const receivers = lan.receivers.map((host) => ctx.start(host, receiverArgv(ctx.outputPath(host)), `udp-receiver-${host.name}`));
    await pause(300, ctx.signal); // let them bind and say hello

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
