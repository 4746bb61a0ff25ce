/**
 * @module The workspace tunnel: the daemon dials OUT to the control plane (WebSocket `GET /api/v1/tunnel`,
 * `Authorization: Bearer <workspace token>`), so no provider needs an inbound port. JSON text frames.
 *
 * Delivery: the control plane stores each event durably, then acknowledges it. After a reconnect the daemon
 * resends everything after the acknowledged sequence of each conversation; the control plane ignores sequence
 * numbers it already holds. So nothing is lost (the daemon's log is the source) and nothing is duplicated
 * (sequence numbers are the identity).
 */
import type { AnyEvent, ConversationInfo } from './events.js';
import type { MuxControl } from './mux.js';

export const TUNNEL_PATH = '/api/v1/tunnel';

/** Written by the control plane into the workspace (`<root>/.claude-vm/tunnel.json`, mode 0600). */
export interface TunnelConfig {
  /** `http(s)://host[:port]` or `unix:/path/to/server.sock`. */
  url: string;
  /** Scoped to this one workspace: it can only open this workspace's tunnel. */
  token: string;
}

export type DaemonMessage =
  /** First frame after connecting: what the daemon holds. */
  | { t: 'hello'; workspaceId: string; version: string; conversations: ConversationInfo[] }
  /** Events in sequence order per conversation (a batch may mix conversations). */
  | { t: 'events'; events: AnyEvent[] }
  /** A conversation's summary changed (state, queue, cost): lets the control plane answer while it is offline. */
  | { t: 'conversation'; info: ConversationInfo }
  | { t: 'res'; id: number; result?: unknown; error?: { message: string; code?: string } }
  /** Byte streams (see mux.ts): `opened`, `credit`, `eof`, `close`. Their data goes in binary frames. */
  | Exclude<MuxControl, { t: 'open' }>;

export type ServerMessage =
  /** Answer to hello: the last sequence the control plane has stored, per conversation (missing = 0). */
  | { t: 'welcome'; acked: Record<string, number> }
  /** Stored durably up to these sequence numbers. */
  | { t: 'ack'; acked: Record<string, number> }
  /** A daemon RPC (the same methods as the daemon's unix socket), answered with `res` of the same id. */
  | { t: 'req'; id: number; method: string; params: Record<string, unknown> }
  /** Byte streams (see mux.ts): `open` (SSH, a port), `credit`, `eof`, `close`. Their data goes in binary frames. */
  | Exclude<MuxControl, { t: 'opened' }>;

/** ws URL for a TunnelConfig url (the `ws` package reaches unix sockets as `ws+unix:///path:/request-path`). */
export function tunnelWsUrl(url: string): string {
  if (url.startsWith('unix:')) return `ws+unix://${url.slice('unix:'.length)}:${TUNNEL_PATH}`;
  return url.replace(/^http/, 'ws').replace(/\/$/, '') + TUNNEL_PATH;
}
