/**
 * @module Tells a user when a turn finishes or fails, or an agent waits for an approval: in the app (their live
 * stream), by Web Push (VAPID) to their subscribed browsers, and by a webhook (ntfy-compatible: a POST with the
 * message as the body and a Title header). Each event is ingested by exactly one control-plane process, so each
 * notification goes out once.
 */
import webpush from 'web-push';
import type { AnyEvent, EventPayloads } from '../protocol/events.js';
import type { NotificationStore } from '../store/notifications.js';
import type { StateStore } from '../store/state.js';
import type { UserStreams } from './user-streams.js';

export interface Notification {
  kind: 'turn.completed' | 'turn.failed' | 'approval.requested';
  title: string;
  body: string;
  workspaceId: string;
  conversationId: string;
}

export function notificationFor(workspace: { id: string; name: string | null }, e: AnyEvent): Notification | undefined {
  const where = workspace.name ?? workspace.id;
  const base = { workspaceId: workspace.id, conversationId: e.conversationId };
  if (e.type === 'turn.completed') {
    const d = e.data as EventPayloads['turn.completed'];
    const text = d.result.replace(/\s+/g, ' ').trim().slice(0, 180);
    return d.isError
      ? { ...base, kind: 'turn.failed', title: `Turn failed in ${where}`, body: text || 'The agent reported an error.' }
      : { ...base, kind: 'turn.completed', title: `Done in ${where}`, body: text || 'The agent finished its turn.' };
  }
  if (e.type === 'approval.requested') {
    const d = e.data as EventPayloads['approval.requested'];
    const input = d.input as { command?: string; file_path?: string } | undefined;
    return { ...base, kind: 'approval.requested', title: `Approval needed in ${where}`, body: `${d.tool}: ${input?.command ?? input?.file_path ?? JSON.stringify(d.input).slice(0, 160)}` };
  }
  return undefined;
}

export class Notifier {
  private vapid: { publicKey: string; privateKey: string } | undefined;

  constructor(
    private readonly store: StateStore,
    private readonly notifications: NotificationStore,
    private readonly streams: UserStreams,
    /** Contact for push services (VAPID "sub"): the server's public URL or a mailto. */
    private readonly contact: string,
  ) {}

  async publicKey(): Promise<string> {
    return (await this.keys()).publicKey;
  }

  private async keys(): Promise<{ publicKey: string; privateKey: string }> {
    return (this.vapid ??= await this.notifications.vapidKeys(() => webpush.generateVAPIDKeys()));
  }

  /** Called for every stored event; sends only the ones worth a notification. */
  async onEvent(workspaceId: string, e: AnyEvent): Promise<void> {
    if (e.type !== 'turn.completed' && e.type !== 'approval.requested') return;
    const w = await this.store.getWorkspace(workspaceId);
    if (!w?.ownerId) return;
    const n = notificationFor(w, e);
    if (n) await this.send(w.ownerId, n);
  }

  async send(userId: string, n: Notification): Promise<{ push: number; webhook: boolean }> {
    this.streams.publish(userId, 'notification', n);
    let push = 0;
    let webhook = false;
    const url = await this.notifications.webhook(userId);
    if (url) {
      webhook = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'text/plain; charset=utf-8', Title: asciiHeader(n.title), Tags: n.kind === 'approval.requested' ? 'warning' : n.kind === 'turn.failed' ? 'x' : 'white_check_mark', 'X-Claude-VM-Kind': n.kind },
        body: n.body,
        signal: AbortSignal.timeout(10_000),
      }).then((r) => r.ok, () => false);
    }
    const subs = await this.notifications.subscriptions(userId);
    if (subs.length) {
      const { publicKey, privateKey } = await this.keys();
      for (const sub of subs) {
        try {
          await webpush.sendNotification(sub, JSON.stringify(n), { vapidDetails: { subject: this.contact, publicKey, privateKey }, TTL: 3600, timeout: 10_000 });
          push++;
        } catch (e) {
          const status = (e as { statusCode?: number }).statusCode;
          if (status === 404 || status === 410) await this.notifications.removeSubscription(sub.endpoint);
        }
      }
    }
    return { push, webhook };
  }
}

/** HTTP header values must be ASCII: workspace names are, but a result's text may not be. */
function asciiHeader(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}
