/* claude-vm web UI service worker: shows Web Push notifications and opens the conversation they are about. */
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));

self.addEventListener('push', (e) => {
  let n = {};
  try {
    n = e.data ? e.data.json() : {};
  } catch {
    n = { title: 'claude-vm', body: e.data ? e.data.text() : '' };
  }
  const url = n.workspaceId && n.conversationId ? `/#/w/${n.workspaceId}/c/${n.conversationId}` : n.kind === 'approval.requested' ? '/#/approvals' : '/';
  e.waitUntil(
    self.registration.showNotification(n.title || 'claude-vm', {
      body: n.body || '',
      icon: '/icon.svg',
      badge: '/icon.svg',
      tag: n.conversationId || n.kind || 'claude-vm',
      renotify: true,
      requireInteraction: n.kind === 'approval.requested',
      data: { url },
    }),
  );
});

self.addEventListener('notificationclick', (e) => {
  e.notification.close();
  const url = (e.notification.data && e.notification.data.url) || '/';
  e.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((list) => {
      for (const c of list) {
        if (new URL(c.url).origin === self.location.origin && 'focus' in c) {
          c.navigate(url).catch(() => undefined);
          return c.focus();
        }
      }
      return self.clients.openWindow(url);
    }),
  );
});
