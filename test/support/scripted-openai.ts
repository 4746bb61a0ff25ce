/**
 * @module A scripted OpenAI Responses API server, so tests can drive the REAL Codex CLI offline (a custom
 * model_provider with base_url=<server.url>/v1, wire_api="responses"). Each `POST /v1/responses` consumes the
 * next enqueued ScriptedTurn; an empty queue answers NO_TURN_TEXT so a run never hangs.
 *
 * What Codex 0.169.0 does (observed, see test/codex-driver.test.ts):
 *  - it first tries a WebSocket upgrade on `GET /v1/responses`; refusing it with 426 makes it fall back to SSE
 *    (anything else and it retries for a long time);
 *  - then `POST /v1/responses` with `stream: true`, `input` (the whole history, incl. function_call_output
 *    items), `tools` (its shell tool is `exec_command` {cmd, …}), one request per model step.
 * The stream is the Responses API's SSE (`event: <type>\ndata: <json>\n\n`), ended by response.completed;
 * there is no [DONE] sentinel.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { closeServer, json, listen, pause, readRequest, type ListenOptions } from './http-fixture.js';

export interface ScriptedToolCall {
  name: string; // a Codex function tool, e.g. 'exec_command' {cmd}
  arguments?: Record<string, unknown>;
  /** Makes it a freeform `custom_tool_call` instead, e.g. 'apply_patch' with the patch text (gpt-5.5 family). */
  input?: string;
  callId?: string; // default call_scripted_<n>; set it to find the matching function_call_output later
}

/** What the "model" answers to the next request: text first, then tool calls. */
export interface ScriptedTurn {
  text?: string;
  tools?: ScriptedToolCall[];
  /** Wait this long after response.created before streaming the output, to simulate a long turn. */
  delayMs?: number;
  /** End the stream with response.failed carrying this error instead of any output. */
  error?: { code: string; message: string };
}

export interface RecordedRequest {
  path: string;
  headers: Record<string, string>;
  body: any;
}

export const NO_TURN_TEXT = '(no scripted turn)';

export class ScriptedOpenAI {
  /** Every POST /v1/responses, in order. */
  readonly requests: RecordedRequest[] = [];
  /** Every other request (WebSocket upgrades, /models, unknown paths), to see what a new version probes. */
  readonly probes: Array<{ method: string; path: string }> = [];
  private readonly queue: ScriptedTurn[] = [];
  private nextId = 1;

  private constructor(
    private readonly server: Server,
    /** The API root; Codex's base_url is `${url}/v1`. */
    readonly url: string,
  ) {}

  /** Listen on host (default 127.0.0.1; '0.0.0.0' lets a container reach it via the host gateway), random port. */
  static async start(opts: ListenOptions = {}): Promise<ScriptedOpenAI> {
    let self: ScriptedOpenAI | undefined;
    const { server, url } = await listen('scripted-openai', (req, res) => self!.handle(req, res), opts);
    self = new ScriptedOpenAI(server, url);
    // A WebSocket handshake arrives as 'upgrade', not 'request': refuse it so Codex falls back to SSE.
    server.on('upgrade', (req, socket) => {
      self!.probes.push({ method: `${req.method} (upgrade)`, path: req.url ?? '/' });
      socket.end('HTTP/1.1 426 Upgrade Required\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    });
    return self;
  }

  /** Model answers, consumed in order by POST /v1/responses. */
  enqueue(...turns: ScriptedTurn[]): void {
    this.queue.push(...turns);
  }

  /** Turns not yet consumed. */
  get pending(): number {
    return this.queue.length;
  }

  /** Resolve once `count` model requests have arrived (e.g. a delayed turn has started). */
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

    if (req.method === 'POST' && pathname === '/v1/responses') {
      this.requests.push({ path, headers, body });
      return this.answer(res, body, this.queue.shift() ?? { text: NO_TURN_TEXT });
    }
    this.probes.push({ method: req.method ?? '', path });
    // A plain GET on the streaming endpoint is a WebSocket attempt without the Upgrade handshake: same refusal.
    if (pathname === '/v1/responses') return json(res, 426, { error: { message: 'websocket not supported' } });
    if (req.method === 'GET' && pathname === '/v1/models') return json(res, 200, { object: 'list', data: [] });
    if (process.env.SCRIPTED_OPENAI_DEBUG) console.error(`scripted-openai: unknown ${req.method} ${path}`);
    json(res, 404, { error: { type: 'not_found', message: `no route ${req.method} ${path}` } });
  }

  private async answer(res: ServerResponse, body: any, turn: ScriptedTurn): Promise<void> {
    const id = `resp_scripted_${this.nextId++}`;
    const output: any[] = [];
    if (turn.text !== undefined) {
      output.push({
        type: 'message',
        id: `msg_scripted_${this.nextId++}`,
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: turn.text, annotations: [] }],
      });
    }
    for (const t of turn.tools ?? []) {
      const common = { id: `fc_scripted_${this.nextId++}`, call_id: t.callId ?? `call_scripted_${this.nextId++}`, name: t.name, status: 'completed' };
      output.push(
        t.input !== undefined
          ? { type: 'custom_tool_call', ...common, input: t.input }
          : { type: 'function_call', ...common, arguments: JSON.stringify(t.arguments ?? {}) },
      );
    }
    const response = { id, object: 'response', status: 'in_progress', model: body?.model ?? 'scripted', output: [] as any[] };
    const outputTokens = Math.max(1, Math.ceil(JSON.stringify(output).length / 4));
    const usage = {
      input_tokens: Math.max(1, Math.ceil(JSON.stringify(body?.input ?? '').length / 4)),
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 0,
    };
    usage.total_tokens = usage.input_tokens + usage.output_tokens;

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    let seq = 0;
    const send = (data: { type: string; [k: string]: unknown }) => {
      if (!res.destroyed) res.write(`event: ${data.type}\ndata: ${JSON.stringify({ ...data, sequence_number: seq++ })}\n\n`);
    };
    send({ type: 'response.created', response });
    send({ type: 'response.in_progress', response });
    if (turn.delayMs) await pause(res, turn.delayMs);
    if (turn.error) {
      send({ type: 'response.failed', response: { ...response, status: 'failed', error: turn.error } });
      if (!res.destroyed) res.end();
      return;
    }
    output.forEach((item, output_index) => {
      if (item.type === 'message') {
        send({ type: 'response.output_item.added', output_index, item: { ...item, status: 'in_progress', content: [] } });
        const part = { type: 'output_text', text: '', annotations: [] };
        send({ type: 'response.content_part.added', item_id: item.id, output_index, content_index: 0, part });
        // The text arrives as deltas the client concatenates; split it to exercise that.
        const text: string = item.content[0].text;
        const cut = Math.floor(text.length / 2);
        for (const delta of [text.slice(0, cut), text.slice(cut)]) {
          send({ type: 'response.output_text.delta', item_id: item.id, output_index, content_index: 0, delta });
        }
        send({ type: 'response.output_text.done', item_id: item.id, output_index, content_index: 0, text });
        send({ type: 'response.content_part.done', item_id: item.id, output_index, content_index: 0, part: item.content[0] });
      } else if (item.type === 'custom_tool_call') {
        send({ type: 'response.output_item.added', output_index, item: { ...item, status: 'in_progress', input: '' } });
        send({ type: 'response.custom_tool_call_input.delta', item_id: item.id, output_index, delta: item.input });
        send({ type: 'response.custom_tool_call_input.done', item_id: item.id, output_index, input: item.input });
      } else {
        send({ type: 'response.output_item.added', output_index, item: { ...item, status: 'in_progress', arguments: '' } });
        send({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index, delta: item.arguments });
        send({ type: 'response.function_call_arguments.done', item_id: item.id, output_index, arguments: item.arguments });
      }
      send({ type: 'response.output_item.done', output_index, item });
    });
    send({ type: 'response.completed', response: { ...response, status: 'completed', output, usage } });
    if (!res.destroyed) res.end();
  }
}


