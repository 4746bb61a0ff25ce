/**
 * @module Where a user's notifications go (a webhook, Web Push subscriptions) and the server's VAPID key pair.
 * Subscriptions and the private key are sealed: each lets its holder push to someone's browser.
 */
import type { Db } from './db.js';
import type { SecretBox } from './secrets.js';
import { newId } from './ids.js';
import { now } from './state.js';

export interface PushSubscriptionJson {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export class NotificationStore {
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
  ) {}

  async webhook(userId: string): Promise<string | null> {
    return (await this.db.get<{ webhook_url: string | null }>('SELECT webhook_url FROM notification_settings WHERE user_id = ?', [userId]))?.webhook_url ?? null;
  }

  async setWebhook(userId: string, url: string | null): Promise<void> {
    await this.db.run(
      `INSERT INTO notification_settings (user_id, webhook_url, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (user_id) DO UPDATE SET webhook_url = excluded.webhook_url, updated_at = excluded.updated_at`,
      [userId, url, now()],
    );
  }

  async addSubscription(userId: string, sub: PushSubscriptionJson): Promise<void> {
    await this.db.run(
      `INSERT INTO push_subscriptions (id, user_id, endpoint, subscription, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, subscription = excluded.subscription`,
      [newId('sub'), userId, sub.endpoint, this.box.seal(JSON.stringify(sub)), now()],
    );
  }

  async subscriptions(userId: string): Promise<PushSubscriptionJson[]> {
    const rows = await this.db.all<{ subscription: string }>('SELECT subscription FROM push_subscriptions WHERE user_id = ?', [userId]);
    return rows.map((r) => JSON.parse(this.box.open(r.subscription)) as PushSubscriptionJson);
  }

  /** A browser said the subscription is gone (404/410): stop pushing to it. */
  async removeSubscription(endpoint: string): Promise<void> {
    await this.db.run('DELETE FROM push_subscriptions WHERE endpoint = ?', [endpoint]);
  }

  /** The server's VAPID key pair, made once (by whichever process gets there first) and shared by all. */
  async vapidKeys(make: () => { publicKey: string; privateKey: string }): Promise<{ publicKey: string; privateKey: string }> {
    const row = await this.db.get<{ value: string }>("SELECT value FROM server_settings WHERE key = 'vapid'");
    if (row) return JSON.parse(this.box.open(row.value)) as { publicKey: string; privateKey: string };
    await this.db.run("INSERT INTO server_settings (key, value) VALUES ('vapid', ?) ON CONFLICT (key) DO NOTHING", [this.box.seal(JSON.stringify(make()))]);
    return this.vapidKeys(make);
  }
}
