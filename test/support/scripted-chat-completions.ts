/**
 * @module A scripted OpenAI Chat Completions server, so tests can drive OpenAI-compatible agent CLIs (Qwen Code
 * with OPENAI_BASE_URL=<server.url>/v1) offline. Each `POST /v1/chat/completions` consumes the next enqueued
 * ScriptedTurn; an empty queue answers NO_TURN_TEXT so a run never hangs.
 *
 * The answer is streamed as SSE (`data: <chunk json>\n\n` … `data: [DONE]\n\n`): a role chunk, the text split
 * into content deltas, each tool call as a first chunk carrying id + function name and then its arguments in
 * pieces, a chunk with finish_reason ('tool_calls' or 'stop') and a final chunk with usage. A request with
 * `stream: false` gets one chat.completion object.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { closeServer, json, listen, pause, readRequest, type ListenOptions } from './http-fixture.js';

export interface ScriptedToolCall {
  name: string; // e.g. Qwen Code's 'run_shell_command' {command}
  arguments?: Record<string, unknown>;
  id?: string; // default call_scripted_<n>; set it to find the matching tool message later
}

/** What the "model" answers to the next request: text first, then tool calls. */
export interface ScriptedTurn {
  text?: string;
  tools?: ScriptedToolCall[];
  /** Wait this long after the role chunk before streaming the rest, to simulate a long turn. */
  delayMs?: number;
  /** Answer with this HTTP error status and OpenAI error body instead. */
  error?: { status: number; message: string };
}

export interface RecordedRequest {
  path: string;
  headers: Record<string, string>;
  body: any;
}

export const NO_TURN_TEXT = '(no scripted turn)';

export class ScriptedChatCompletions {
  /** Every POST /v1/chat/completions, in order. */
  readonly requests: RecordedRequest[] = [];
  /** Every other request (/models, unknown paths), to see what a new version probes. */
  readonly probes: Array<{ method: string; path: string }> = [];
  private readonly queue: ScriptedTurn[] = [];
  private nextId = 1;

  private constructor(
    private readonly server: Server,
    /** The API root; the client's base URL is `${url}/v1`. */
    readonly url: string,
  ) {}

  static async start(opts: ListenOptions = {}): Promise<ScriptedChatCompletions> {
    let self: ScriptedChatCompletions | undefined;
    const { server, url } = await listen('scripted-chat-completions', (req, res) => self!.handle(req, res), opts);
    return (self = new ScriptedChatCompletions(server, url));
  }

  enqueue(...turns: ScriptedTurn[]): void {
    this.queue.push(...turns);
  }

  get pending(): number {
    return this.queue.length;
  }

  async waitForRequests(count: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.requests.length < count) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} model requests (got ${this.requests.length})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { body, path, pathname, headers } = await readRequest(req);
    if (req.method === 'POST' && pathname === '/v1/chat/completions') {
      this.requests.push({ path, headers, body });
      return this.answer(res, body, this.queue.shift() ?? { text: NO_TURN_TEXT });
    }
    this.probes.push({ method: req.method ?? '', path });
    if (req.method === 'GET' && pathname === '/v1/models') return json(res, 200, { object: 'list', data: [] });
    json(res, 404, { error: { type: 'not_found', message: `no route ${req.method} ${path}` } });
  }

  private async answer(res: ServerResponse, body: any, turn: ScriptedTurn): Promise<void> {
    if (turn.error) return json(res, turn.error.status, { error: { message: turn.error.message, type: 'invalid_request_error', code: null } });
    const id = `chatcmpl-scripted-${this.nextId++}`;
    const model = body?.model ?? 'scripted';
    const created = Math.floor(Date.now() / 1000);
    const calls = (turn.tools ?? []).map((t) => ({ id: t.id ?? `call_scripted_${this.nextId++}`, name: t.name, arguments: JSON.stringify(t.arguments ?? {}) }));
    const finish = calls.length ? 'tool_calls' : 'stop';
    const prompt_tokens = Math.max(1, Math.ceil(JSON.stringify(body?.messages ?? '').length / 4));
    const completion_tokens = Math.max(1, Math.ceil(((turn.text ?? '').length + JSON.stringify(calls).length) / 4));
    const usage = { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };

    if (body?.stream === false) {
      const message: any = { role: 'assistant', content: turn.text ?? null };
      if (calls.length) message.tool_calls = calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
      return json(res, 200, { id, object: 'chat.completion', created, model, choices: [{ index: 0, message, finish_reason: finish }], usage });
    }

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (choices: unknown[], extra: Record<string, unknown> = {}) => {
      if (!res.destroyed) res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...extra })}\n\n`);
    };
    const delta = (d: Record<string, unknown>, finish_reason: string | null = null) => send([{ index: 0, delta: d, finish_reason }]);
    delta({ role: 'assistant', content: '' });
    if (turn.delayMs) await pause(res, turn.delayMs);
    if (res.destroyed) return;
    if (turn.text) {
      const cut = Math.floor(turn.text.length / 2);
      for (const piece of [turn.text.slice(0, cut), turn.text.slice(cut)]) if (piece) delta({ content: piece });
    }
    calls.forEach((c, index) => {
      delta({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] });
      const cut = Math.floor(c.arguments.length / 2);
      for (const piece of [c.arguments.slice(0, cut), c.arguments.slice(cut)]) delta({ tool_calls: [{ index, function: { arguments: piece } }] });
    });
    delta({}, finish);
    send([], { usage });
    if (!res.destroyed) res.end('data: [DONE]\n\n');
  }
}


