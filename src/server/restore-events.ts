/**
 * @module After a restore from a snapshot older than what the control plane stored (a volume lost without a `down`),
 * each conversation's log on the volume ends before the stored events do. Those events are written back into the
 * log before the daemon starts, so the log is whole again and the daemon numbers its next events after them
 * (otherwise they would collide with stored numbers and never be shown).
 */
import { Readable } from 'node:stream';
import { run } from '../core/run-in-workspace.js';
import type { WorkspaceTarget } from '../core/workspaces.js';
import type { EventStore } from '../store/events.js';

/**
 * Runs in the workspace: for every conversation log, cuts a torn last line (as the daemon would on load) and
 * prints the last sequence number, as one JSON object on the last line of output.
 */
const LAST_SEQS = `
const fs = require('fs'), path = require('path');
const dir = process.argv[1], out = {};
for (const id of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
  const file = path.join(dir, id, 'events.jsonl');
  if (!fs.existsSync(file)) continue;
  const text = fs.readFileSync(file, 'utf8');
  let good = 0, seq = 0;
  for (const line of text.split('\\n')) {
    if (!line) continue;
    try { const e = JSON.parse(line); if (e.seq !== seq + 1) break; seq = e.seq; good += Buffer.byteLength(line) + 1; } catch { break; }
  }
  if (good < Buffer.byteLength(text)) fs.truncateSync(file, good);
  out[id] = seq;
}
console.log(JSON.stringify(out));
`;

export async function restoreStoredEvents(t: WorkspaceTarget, events: EventStore): Promise<number> {
  const dir = `${t.provider.workspaceRoot(t.refs)}/.claude-vm/conversations`;
  const probe = await run(t.provider, t.refs, ['node', '-e', LAST_SEQS, dir]);
  if (probe.code !== 0) throw new Error(`could not read the restored conversation logs: ${probe.output.trim()}`);
  const inLog = JSON.parse(probe.output.trim().split('\n').at(-1) ?? '{}') as Record<string, number>;
  const stored = await events.lastSeqs(t.workspaceId);
  let written = 0;
  for (const [conversation, last] of Object.entries(inLog)) {
    const have = stored[conversation] ?? 0;
    if (have <= last) continue;
    const lines: string[] = [];
    for (let from = last + 1; from <= have; from += 1000) {
      for (const e of await events.read(t.workspaceId, conversation, from, 1000)) lines.push(JSON.stringify(e));
    }
    const r = await run(t.provider, t.refs, ['sh', '-c', 'cat >> "$1"', 'sh', `${dir}/${conversation}/events.jsonl`], { stdin: Readable.from([lines.join('\n') + '\n']) });
    if (r.code !== 0) throw new Error(`could not write back the events of ${conversation}: ${r.output.trim()}`);
    written += lines.length;
  }
  return written;
}
