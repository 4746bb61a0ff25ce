/** @module Where your notifications go: a webhook (ntfy-compatible) and Web Push subscriptions (VAPID). */
import { UserError } from '../../protocol/errors.js';
import type { ControlPlane } from '../control-plane.js';
import { route, z, type Api } from './route.js';

export function notificationRoutes(app: Api, cp: ControlPlane): void {
  route(app, cp, { method: 'get', path: '/api/v1/notifications', summary: 'Your notification settings and the VAPID public key for Web Push', tag: 'notifications' }, async ({ c, caller }) =>
    c.json({
      webhookUrl: await cp.notifications.webhook(caller.principal.userId),
      vapidPublicKey: await cp.notifier.publicKey(),
      subscriptions: (await cp.notifications.subscriptions(caller.principal.userId)).length,
    }),
  );

  route(
    app, cp,
    { method: 'put', path: '/api/v1/notifications', summary: 'Set (or clear, with null) the webhook notifications are POSTed to', tag: 'notifications', body: z.object({ webhookUrl: z.string().url().regex(/^https?:\/\//).nullable() }) },
    async ({ c, caller }, { body }) => {
      await cp.notifications.setWebhook(caller.principal.userId, body.webhookUrl);
      await cp.auth.audit({ userId: caller.principal.userId, action: 'notifications.webhook', target: null, detail: { set: !!body.webhookUrl } });
      return c.json({ webhookUrl: body.webhookUrl });
    },
  );

  route(
    app, cp,
    {
      method: 'post', path: '/api/v1/notifications/subscriptions', summary: "Add this browser's Web Push subscription", tag: 'notifications',
      body: z.object({ endpoint: z.string().url().regex(/^https:\/\//, 'a push service endpoint is https'), keys: z.object({ p256dh: z.string().min(1), auth: z.string().min(1) }) }),
    },
    async ({ c, caller }, { body }) => {
      await cp.notifications.addSubscription(caller.principal.userId, body);
      return c.json({ subscribed: true }, 201);
    },
  );

  route(app, cp, { method: 'post', path: '/api/v1/notifications/test', summary: 'Send yourself a test notification through every channel', tag: 'notifications' }, async ({ c, caller }) => {
    const r = await cp.notifier.send(caller.principal.userId, { kind: 'turn.completed', title: 'claude-vm test', body: 'Notifications reach you.', workspaceId: '', conversationId: '' });
    if (!r.webhook && !r.push && !(await cp.notifications.webhook(caller.principal.userId)) && !(await cp.notifications.subscriptions(caller.principal.userId)).length) {
      throw new UserError('wrong_state', 'No webhook or push subscription is set; only the in-app notification went out.', 'Set a webhook URL, or enable push in the web UI.');
    }
    return c.json(r);
  });
}
