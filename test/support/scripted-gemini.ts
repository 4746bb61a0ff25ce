/**
 * @module A scripted Gemini API server, so tests can drive the REAL Gemini CLI offline
 * (GOOGLE_GEMINI_BASE_URL=<server.url>, GEMINI_API_KEY, auth type "gemini-api-key" in settings.json).
 * Each `POST /v1beta/models/<model>:streamGenerateContent?alt=sse` consumes the next enqueued ScriptedTurn; an
 * empty queue answers NO_TURN_TEXT so a run never hangs.
 *
 * The stream is plain SSE `data: <GenerateContentResponse>\n\n` chunks (no event names, no [DONE]): the text
 * first, then one chunk with the function calls, the last chunk carrying finishReason and usageMetadata.
 * The request body is `{contents: [{role, parts}], tools, systemInstruction, generationConfig}`: `contents` is
 * the whole history, function results as `{functionResponse: {name, response}}` parts.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { closeServer, json, listen, readRequest, type ListenOptions } from './http-fixture.js';

export interface ScriptedToolCall {
  name: string; // a Gemini CLI tool, e.g. 'run_shell_command' {command, description?}
  args?: Record<string, unknown>;
}

/** What the "model" answers to the next request: text first, then tool calls. */
export interface ScriptedTurn {
  text?: string;
  tools?: ScriptedToolCall[];
  /** Wait this long after the first (empty) chunk before streaming the output, to simulate a long turn. */
  delayMs?: number;
  /** Answer with this HTTP status and a Google API error body instead of a stream. */
  error?: { status: number; message: string };
}

export interface RecordedRequest {
  path: string;
  /** The model named in the path. */
  model: string;
  headers: Record<string, string>;
  body: any;
}

export const NO_TURN_TEXT = '(no scripted turn)';

const STREAM_PATH = /^\/v1beta\/models\/([^/:]+):streamGenerateContent$/;

export class ScriptedGemini {
  /** Every streamGenerateContent request, in order. */
  readonly requests: RecordedRequest[] = [];
  /** Every other request (generateContent router calls, countTokens, unknown paths). */
  readonly probes: Array<{ method: string; path: string }> = [];
  private readonly queue: ScriptedTurn[] = [];

  private constructor(
    private readonly server: Server,
    /** The API root: GOOGLE_GEMINI_BASE_URL. */
    readonly url: string,
  ) {}

  /** Listen on host (default 127.0.0.1; '0.0.0.0' lets a container reach it via the host gateway), random port. */
  static async start(opts: ListenOptions = {}): Promise<ScriptedGemini> {
    let self: ScriptedGemini | undefined;
    const { server, url } = await listen('scripted-gemini', (req, res) => self!.handle(req, res), opts);
    return (self = new ScriptedGemini(server, url));
  }

  /** Model answers, consumed in order. */
  enqueue(...turns: ScriptedTurn[]): void {
    this.queue.push(...turns);
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Resolve once `count` model requests have arrived. */
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
    const m = STREAM_PATH.exec(pathname);
    if (req.method === 'POST' && m) {
      this.requests.push({ path, model: decodeURIComponent(m[1]!), headers, body });
      return this.answer(res, body, this.queue.shift() ?? { text: NO_TURN_TEXT });
    }
    this.probes.push({ method: req.method ?? '', path });
    if (process.env.SCRIPTED_GEMINI_DEBUG) console.error(`scripted-gemini: unknown ${req.method} ${path}`);
    json(res, 404, { error: { code: 404, message: `no route ${req.method} ${path}`, status: 'NOT_FOUND' } });
  }

  private async answer(res: ServerResponse, body: any, turn: ScriptedTurn): Promise<void> {
    if (turn.error) return json(res, turn.error.status, { error: { code: turn.error.status, message: turn.error.message, status: 'FAILED_PRECONDITION' } });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const send = (chunk: unknown) => res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    const usage = (parts: unknown[]) => {
      const promptTokenCount = Math.max(1, Math.ceil(JSON.stringify(body?.contents ?? '').length / 4));
      const candidatesTokenCount = Math.max(1, Math.ceil(JSON.stringify(parts).length / 4));
      return { promptTokenCount, candidatesTokenCount, totalTokenCount: promptTokenCount + candidatesTokenCount };
    };
    const chunk = (parts: unknown[], last: boolean) => ({
      candidates: [{ content: { role: 'model', parts }, index: 0, ...(last ? { finishReason: 'STOP' } : {}) }],
      ...(last ? { usageMetadata: usage(parts) } : {}),
      modelVersion: body?.model ?? 'scripted',
    });
    if (turn.delayMs) {
      send(chunk([{ text: '' }], false)); // headers and a first chunk, so the CLI is really waiting mid-stream
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, turn.delayMs);
        res.on('close', () => (clearTimeout(timer), resolve()));
      });
      if (res.destroyed) return;
    }
    const calls = (turn.tools ?? []).map((t) => ({ functionCall: { name: t.name, args: t.args ?? {} } }));
    const text = turn.text ?? '';
    // The text in two pieces (the CLI's stream-json shows them as assistant deltas), then the calls.
    const pieces = text.length > 1 ? [text.slice(0, Math.ceil(text.length / 2)), text.slice(Math.ceil(text.length / 2))] : text ? [text] : [];
    pieces.forEach((p, i) => send(chunk([{ text: p }], i === pieces.length - 1 && calls.length === 0)));
    if (calls.length) send(chunk(calls, true));
    if (!pieces.length && !calls.length) send(chunk([{ text: '' }], true));
    res.end();
  }
}

