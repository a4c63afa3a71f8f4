// Codec round trips and hostile-input properties of the wire format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as w from '../../src/protocol/wire.js';
import { FecScheme, MAX_RAPTORQ_SYMBOLS } from '../../src/fec/scheme.js';
import { PacketProtector } from '../../src/protocol/crypto.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const digest = fc.uint8Array({ minLength: 32, maxLength: 32 });

test('announce round trip', () => {
  fc.assert(
    fc.property(u32, fc.record({
      phase: fc.constantFrom(w.Phase.Waiting, w.Phase.Transferring, w.Phase.Ending),
      flags: fc.constantFrom(0, 2),
      fec: fc.constantFrom(FecScheme.ReedSolomon, FecScheme.RaptorQ),
      symbolSize: fc.integer({ min: 1, max: 0xffff }),
      blockSymbols: fc.integer({ min: 1, max: 255 }),
      imageSize: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      sourceFrontier: u32, receivers: u32, grttMicros: u32, timestamp: u32, statusIntervalMs: u32, rateKbps: u32,
      digest: fc.option(digest, { nil: null }),
    }), (sid, a) => {
      const buf = w.encodeAnnounce(sid, a);
      const h = w.readHeader(buf);
      assert.deepEqual(h, { type: w.PacketType.Announce, encrypted: false, sessionId: sid });
      const back = w.decodeAnnounce(buf);
      assert.deepEqual({ ...back, digest: back.digest && Array.from(back.digest) }, { ...a, flags: a.flags | (a.digest ? 1 : 0), digest: a.digest && Array.from(a.digest) });
    }),
  );
});

test('announce: the FEC scheme bounds the block size; unknown schemes are malformed', () => {
  const base = {
    phase: w.Phase.Transferring, flags: 0, symbolSize: 1452, imageSize: 1 << 30, sourceFrontier: 0, receivers: 3,
    grttMicros: 1000, timestamp: 0, statusIntervalMs: 250, rateKbps: 0, digest: null,
  };
  const rq = w.decodeAnnounce(w.encodeAnnounce(1, { ...base, fec: FecScheme.RaptorQ, blockSymbols: MAX_RAPTORQ_SYMBOLS }));
  assert.equal(rq.fec, FecScheme.RaptorQ);
  assert.equal(rq.blockSymbols, MAX_RAPTORQ_SYMBOLS);
  assert.throws(() => w.decodeAnnounce(w.encodeAnnounce(1, { ...base, fec: FecScheme.RaptorQ, blockSymbols: MAX_RAPTORQ_SYMBOLS + 1 })), w.WireError);
  assert.throws(() => w.decodeAnnounce(w.encodeAnnounce(1, { ...base, fec: FecScheme.ReedSolomon, blockSymbols: 256 })), /bad block size 256/);
  const unknown = w.encodeAnnounce(1, { ...base, fec: FecScheme.ReedSolomon, blockSymbols: 128 });
  unknown.writeUInt8(7, 14);
  assert.throws(() => w.decodeAnnounce(unknown), /unknown FEC scheme 7/);
});

test('data, hashes, join, status, nack, ack, end round trips', () => {
  fc.assert(
    fc.property(u32, u32, u16, u16, fc.uint8Array({ minLength: 1, maxLength: 1500 }), (seq, block, tsn, planned, payload) => {
      const buf = Buffer.concat([w.encodeDataHeader(1, seq, block, tsn, planned), payload]);
      const d = w.decodeData(buf);
      assert.deepEqual([d.seq, d.block, d.tsn, d.plannedEnd, Buffer.from(d.payload)], [seq, block, tsn, planned, Buffer.from(payload)]);
    }),
  );
  fc.assert(
    fc.property(u32, fc.integer({ min: 1, max: 40 }), (first, count) => {
      const hashes = new Uint8Array(count * 32).map((_, i) => i);
      const h = w.decodeHashes(w.encodeHashes(3, first, hashes));
      assert.equal(h.firstBlock, first);
      assert.deepEqual(Array.from(h.hashes), Array.from(hashes));
    }),
  );
  fc.assert(
    fc.property(u32, u32, u32, fc.string({ maxLength: 20 }), (nodeId, ts, delay, name) => {
      const j = w.decodeJoin(w.encodeJoin(5, { nodeId, echo: { timestamp: ts, delay }, name }));
      assert.deepEqual(j, { nodeId, echo: { timestamp: ts, delay }, name });
    }),
  );
  fc.assert(
    fc.property(u32, fc.constantFrom(0, 1, 2), u32, u32, fc.integer({ min: 0, max: 1_000_000 }), u16, u32, fc.option(digest, { nil: null }), (nodeId, state, blocks, received, lossPpm, lossEvents, intervalMicros, dg) => {
      const s = w.decodeStatus(w.encodeStatus(5, { nodeId, state, blocksComplete: blocks, echo: { timestamp: 1, delay: 2 }, received, lossPpm, lossEvents, intervalMicros, digest: dg }));
      assert.deepEqual({ ...s, digest: s.digest && Array.from(s.digest) }, { nodeId, state, blocksComplete: blocks, echo: { timestamp: 1, delay: 2 }, received, lossPpm, lossEvents, intervalMicros, digest: dg && Array.from(dg) });
    }),
  );
  const entry = fc.record({ block: u32, run: fc.integer({ min: 1, max: 0xffff }), need: u16, seen: u16, flags: fc.constantFrom(0, 1) });
  fc.assert(
    fc.property(u32, fc.array(entry, { maxLength: 100 }), (nodeId, entries) => {
      const n = w.decodeNack(w.encodeNack(5, { nodeId, echo: { timestamp: 0, delay: 0 }, entries }));
      assert.deepEqual(n.entries, entries.map((e) => ({ ...e })));
    }),
  );
  assert.deepEqual(w.decodeAck(w.encodeAck(1, { nodeId: 9, kind: w.AckKind.Dropped })), { nodeId: 9, kind: w.AckKind.Dropped, dropReason: w.DropReason.Unspecified });
  assert.deepEqual(w.decodeAck(w.encodeAck(1, { nodeId: 9, kind: w.AckKind.Dropped, dropReason: w.DropReason.TooSlow })), { nodeId: 9, kind: w.AckKind.Dropped, dropReason: w.DropReason.TooSlow });
  assert.deepEqual(w.decodeAck(w.encodeAck(1, { nodeId: 9, kind: w.AckKind.Joined, dropReason: w.DropReason.TooSlow })), { nodeId: 9, kind: w.AckKind.Joined });
  const future = w.encodeAck(1, { nodeId: 9, kind: w.AckKind.Dropped });
  future.writeUInt8(200, 13); // a reason this version does not know
  assert.equal(w.decodeAck(future).dropReason, w.DropReason.Unspecified);
  assert.deepEqual(w.decodeEnd(w.encodeEnd(1, { reason: w.EndReason.Limit, completed: 4 })), { reason: w.EndReason.Limit, completed: 4 });
  assert.ok(w.nackCapacity(1400) * w.NACK_ENTRY_BYTES + 24 <= 1400);
});

test('arbitrary bytes never throw anything but WireError from any decoder', () => {
  const decoders = [w.decodeAnnounce, w.decodeData, w.decodeHashes, w.decodeJoin, w.decodeStatus, w.decodeNack, w.decodeAck, w.decodeEnd];
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const buf = Buffer.from(bytes);
      for (const decode of [w.readHeader, ...decoders]) {
        try {
          decode(buf);
        } catch (err) {
          assert.ok(err instanceof w.WireError, `${decode.name}: ${(err as Error).name}: ${(err as Error).message}`);
        }
      }
    }),
    { numRuns: 2000 },
  );
});

test('sealed datagrams: round trip, and any bit flip or wrong key is rejected', () => {
  const a = new PacketProtector('secret');
  const b = new PacketProtector('secret');
  const other = new PacketProtector('other');
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 1400 }), fc.nat(), (payload, flip) => {
      const plain = Buffer.concat([w.encodeDataHeader(77, 1, 2, 3, 4), payload]);
      const sealed = a.seal([plain.subarray(0, 20), plain.subarray(20)]);
      assert.equal(w.readHeader(sealed).encrypted, true);
      assert.ok(b.open(sealed).equals(plain));
      assert.throws(() => other.open(sealed), w.WireError);
      const tampered = Buffer.from(sealed);
      const i = flip % tampered.length;
      tampered[i] = tampered[i]! ^ 1;
      assert.throws(() => b.open(tampered), w.WireError);
    }),
    { numRuns: 200 },
  );
});
