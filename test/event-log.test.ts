/**
 * A conversation's event log (src/daemon/event-log.ts) over a long history: clients catch up from any sequence
 * number with no gap and no duplicate, a torn last line is cut off, and the daemon's memory does not grow with
 * the history (it keeps the newest events and reads older ones back from the volume).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { EventLog } from '../src/daemon/event-log.js';
import type { AnyEvent } from '../src/protocol/events.js';

const seqs = (events: Iterable<AnyEvent>) => [...events].map((e) => e.seq);
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

test('catching up from any point of a long history, across a reopen, with lines longer than a read block', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cvm-log-'));
  try {
    const file = join(dir, 'events.jsonl');
    const log = new EventLog(file, 'c_1');
    for (let i = 1; i <= 1500; i++) {
      // Every 100th event is a 1.5 MB tool output: longer than the block the log reads the file in.
      log.append('message.sent', { text: i % 100 === 0 ? `${i}:` + 'x'.repeat(1_500_000) : `message ${i}` } as never);
    }
    for (const reader of [log, new EventLog(file, 'c_1')]) {
      assert.equal(reader.lastSeq, 1500);
      for (const from of [1, 2, 63, 64, 65, 128, 129, 700, 1244, 1245, 1246, 1300, 1499, 1500]) {
        assert.deepEqual(seqs(reader.read(from)), range(from, 1500), `read from ${from}`);
      }
      assert.deepEqual(seqs(reader.read(1501)), []);
      assert.deepEqual(seqs(reader.read(0)), range(1, 1500));
      const long = [...reader.read(600)][0]!;
      assert.equal((long.data as { text: string }).text.length, '600:'.length + 1_500_000);
      assert.equal((([...reader.read(601)][0]!).data as { text: string }).text, 'message 601');
    }

    // What is appended after a read began is not in it, and comes to subscribers instead.
    const replay = log.read(1490)[Symbol.iterator]();
    const live: number[] = [];
    log.subscribe((e) => live.push(e.seq));
    log.append('message.sent', { text: 'after' } as never);
    assert.deepEqual(seqs({ [Symbol.iterator]: () => replay }), range(1490, 1500));
    assert.deepEqual(live, [1501]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a line torn by a kill mid-write is cut off, and numbering goes on without a gap', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cvm-log-'));
  try {
    const file = join(dir, 'events.jsonl');
    const log = new EventLog(file, 'c_1');
    for (let i = 1; i <= 70; i++) log.append('message.sent', { text: `m${i}` } as never);
    const whole = statSync(file).size;
    appendFileSync(file, '{"seq":71,"time":"2026-11-23T00:00:00Z","conversationId":"c_1","type":"mess');
    const reopened = new EventLog(file, 'c_1');
    assert.equal(reopened.lastSeq, 70);
    assert.equal(statSync(file).size, whole);
    assert.equal(reopened.append('message.sent', { text: 'next' } as never).seq, 71);
    assert.deepEqual(seqs(new EventLog(file, 'c_1').read(60)), range(60, 71));
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as AnyEvent).seq), range(1, 71));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the daemon's memory does not grow with a conversation's history", () => {
  const dir = mkdtempSync(join(tmpdir(), 'cvm-log-'));
  try {
    // 300 MB of history: about 120,000 tool results of 2.5 KB, as a long-running conversation accumulates.
    const file = join(dir, 'events.jsonl');
    const parts: string[] = [];
    for (let seq = 1; seq <= 120_000; seq++) {
      parts.push(JSON.stringify({ seq, time: '2026-11-23T00:00:00.000Z', conversationId: 'c_1', type: 'tool.result', data: { id: `t${seq}`, output: `line ${seq} `.repeat(250) } }));
      if (parts.length === 10_000) (appendFileSync(file, parts.join('\n') + '\n'), (parts.length = 0));
    }
    writeFileSync(join(dir, 'probe.mjs'), `
      import { EventLog } from ${JSON.stringify(join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'daemon', 'event-log.js'))};
      const log = new EventLog(${JSON.stringify(file)}, 'c_1');
      let n = 0;
      for (const e of log.read(119_000)) n++;
      globalThis.gc();
      console.log(JSON.stringify({ lastSeq: log.lastSeq, replayed: n, heapMb: process.memoryUsage().heapUsed / 1e6 }));`);
    const r = spawnSync(process.execPath, ['--expose-gc', join(dir, 'probe.mjs')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { lastSeq: number; replayed: number; heapMb: number };
    assert.deepEqual([out.lastSeq, out.replayed], [120_000, 1001]);
    // Holding the history would take more than the file's 300 MB; the newest events and an index take a few.
    assert.ok(statSync(file).size > 290e6);
    assert.ok(out.heapMb < 30, `the log holds ${out.heapMb.toFixed(0)} MB of JavaScript heap after opening ${(statSync(file).size / 1e6).toFixed(0)} MB of history`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
