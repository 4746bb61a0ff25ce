/**
 * @module A scripted Anthropic Messages API server, so tests can drive the REAL Claude Code CLI offline
 * (ANTHROPIC_BASE_URL=<server.url>). Each model request that belongs to the conversation consumes the next
 * enqueued ScriptedTurn; everything else gets a canned answer so it never eats a turn or hangs.
 *
 * What Claude Code 2.1.330 actually sends in `claude -p --input-format stream-json --output-format stream-json`
 * with CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 (observed, see test/scripted-anthropic.test.ts):
 *  - only `POST /v1/messages?beta=true`, `stream: true`, one per model step (user message or tool results),
 *    always with the full `tools` array (Agent, Bash, Edit, Read, Write, …); headers `x-api-key`,
 *    `anthropic-version: 2023-06-01`, `anthropic-beta: claude-code-20250219,…`, `x-claude-code-session-id`.
 *  - no `HEAD /` (2.1.197 made one), no count_tokens, no title/summary side call. They are still handled
 *    below in case another version or mode makes them: a side call is recognised by having no `tools`.
 * An interrupted request (client hangs up during delayMs) has still consumed its turn.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { closeServer, json, listen, pause, readRequest, type ListenOptions } from './http-fixture.js';

export interface ScriptedToolUse {
  name: string; // a Claude Code built-in, e.g. 'Write' {file_path, content} or 'Bash' {command}
  input: Record<string, unknown>;
  id?: string; // default toolu_scripted_<n>; set it to find the matching tool_result later
}

/** What the "model" answers to the next conversation request: text first, then tool calls. */
export interface ScriptedTurn {
  text?: string;
  tools?: ScriptedToolUse[];
  /** Wait this long after message_start before streaming the content, to simulate a long turn. */
  delayMs?: number;
  /** Hold the answer until this settles (after delayMs): lets a test decide when a turn ends, with no timing guess. */
  hold?: Promise<unknown>;
  /** Default: 'tool_use' when there are tools, else 'end_turn'. */
  stopReason?: string;
}

export interface RecordedRequest {
  path: string; // with query, e.g. /v1/messages?beta=true
  headers: Record<string, string>;
  body: any;
  /** 'turn' consumed a scripted turn (or got the empty-queue answer); 'side' got a canned answer. */
  kind: 'turn' | 'side';
}

export const NO_TURN_TEXT = '(no scripted turn)';
const SIDE_TEXT = 'ok';

export class ScriptedAnthropic {
  /** Every POST /v1/messages, in order; `kind` tells conversation turns from side calls. */
  readonly requests: RecordedRequest[] = [];
  /** Every other request (HEAD /, count_tokens, unknown paths), to see what a new version probes. */
  readonly probes: Array<{ method: string; path: string }> = [];
  private readonly queue: ScriptedTurn[] = [];
  private nextId = 1;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  /** Listen on host (default 127.0.0.1; '0.0.0.0' lets a container reach it via the host gateway), random port. */
  static async start(opts: ListenOptions = {}): Promise<ScriptedAnthropic> {
    let self: ScriptedAnthropic | undefined;
    const { server, url } = await listen('scripted-anthropic', (req, res) => self!.handle(req, res), opts);
    return (self = new ScriptedAnthropic(server, url));
  }

  /** Model answers, consumed in order by conversation requests. */
  enqueue(...turns: ScriptedTurn[]): void {
    this.queue.push(...turns);
  }

  /** Turns not yet consumed. */
  get pending(): number {
    return this.queue.length;
  }

  /** The requests that belong to the conversation, for assertions on messages and tool_results. */
  get turnRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.kind === 'turn');
  }

  /** Resolve once `count` conversation requests have arrived (e.g. a delayed turn has started). */
  async waitForRequests(count: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.turnRequests.length < count) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} model requests (got ${this.turnRequests.length})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { body, path, pathname, headers } = await readRequest(req);

    if (req.method === 'POST' && pathname === '/v1/messages') {
      // A conversation step always carries the tool definitions; side calls (titles, summaries, …) do not.
      const isTurn = Array.isArray(body?.tools) && body.tools.length > 0;
      this.requests.push({ path, headers, body, kind: isTurn ? 'turn' : 'side' });
      const turn: ScriptedTurn = isTurn ? (this.queue.shift() ?? { text: NO_TURN_TEXT }) : { text: SIDE_TEXT };
      return this.answer(res, body, turn);
    }
    this.probes.push({ method: req.method ?? '', path });
    if (req.method === 'POST' && pathname === '/v1/messages/count_tokens') {
      return json(res, 200, { input_tokens: Math.ceil(JSON.stringify(body ?? "").length / 4) });
    }
    // Connectivity checks (HEAD / in some versions) just need a quick success.
    if (pathname === '/') return json(res, 200, {});
    if (process.env.SCRIPTED_ANTHROPIC_DEBUG) console.error(`scripted-anthropic: unknown ${req.method} ${path}`);
    json(res, 404, { type: 'error', error: { type: 'not_found_error', message: `no route ${req.method} ${path}` } });
  }

  private async answer(res: ServerResponse, body: any, turn: ScriptedTurn): Promise<void> {
    const n = this.nextId++;
    const content: any[] = [];
    if (turn.text !== undefined) content.push({ type: 'text', text: turn.text });
    for (const t of turn.tools ?? []) {
      content.push({ type: 'tool_use', id: t.id ?? `toolu_scripted_${this.nextId++}`, name: t.name, input: t.input });
    }
    const stopReason = turn.stopReason ?? (turn.tools?.length ? 'tool_use' : 'end_turn');
    const message = {
      id: `msg_scripted_${n}`,
      type: 'message',
      role: 'assistant',
      model: body?.model ?? 'claude-scripted',
      content: [] as any[],
      stop_reason: null as string | null,
      stop_sequence: null,
      usage: { input_tokens: 10, output_tokens: 1 },
    };
    const outputTokens = Math.max(1, Math.ceil(JSON.stringify(content).length / 4));

    if (!body?.stream) {
      await pause(res, turn.delayMs ?? 0);
      return json(res, 200, {
        ...message,
        content,
        stop_reason: stopReason,
        usage: { input_tokens: 10, output_tokens: outputTokens },
      });
    }

    // SSE exactly as the Messages API streams it: message_start, per block start/delta/stop, message_delta, message_stop.
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (data: { type: string; [k: string]: unknown }) => {
      if (!res.destroyed) res.write(`event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    send({ type: 'message_start', message });
    if (turn.delayMs || turn.hold) {
      // Pings keep the stream visibly alive during a long turn, as the real API does.
      const ping = setInterval(() => send({ type: 'ping' }), 1000);
      await pause(res, turn.delayMs ?? 0);
      if (turn.hold) await Promise.race([turn.hold, new Promise((r) => res.once('close', r))]);
      clearInterval(ping);
    }
    content.forEach((block, index) => {
      if (block.type === 'text') {
        send({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
        send({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: block.text } });
      } else {
        send({ type: 'content_block_start', index, content_block: { ...block, input: {} } });
        // Tool input arrives as JSON fragments that the client concatenates; split it to exercise that.
        const js = JSON.stringify(block.input);
        const cut = Math.floor(js.length / 2);
        for (const partial_json of [js.slice(0, cut), js.slice(cut)]) {
          send({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json } });
        }
      }
      send({ type: 'content_block_stop', index });
    });
    send({
      type: 'message_delta',
      delta: { stop_reason: stopReason, stop_sequence: null },
      usage: { output_tokens: outputTokens },
    });
    send({ type: 'message_stop' });
    if (!res.destroyed) res.end();
  }
}


