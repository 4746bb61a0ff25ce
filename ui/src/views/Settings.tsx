/** Settings: where notifications go (an ntfy-compatible webhook, Web Push in this browser), a test, the account. */
import { useEffect, useState } from 'preact/hooks';
import { get, post, put } from '../api';
import { ErrorBox, Spinner } from '../components/ui';
import { errorToast, toast } from '../store';
import type { Me, NotificationSettings } from '../types';

function keyBytes(base64url: string): Uint8Array {
  const pad = '='.repeat((4 - (base64url.length % 4)) % 4);
  const s = atob((base64url + pad).replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const pushSupported = () => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

export function Settings(props: { me: Me }) {
  const [settings, setSettings] = useState<NotificationSettings | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [webhook, setWebhook] = useState('');
  const [saving, setSaving] = useState(false);
  const [pushState, setPushState] = useState<'unknown' | 'on' | 'off' | 'denied' | 'unsupported' | 'working'>('unknown');
  const [testing, setTesting] = useState(false);

  const load = () =>
    get<NotificationSettings>('/notifications').then(
      (s) => {
        setSettings(s);
        setWebhook(s.webhookUrl ?? '');
        setError(null);
      },
      setError,
    );

  useEffect(() => {
    void load();
    if (!pushSupported()) return setPushState('unsupported');
    if (Notification.permission === 'denied') return setPushState('denied');
    navigator.serviceWorker
      .getRegistration('/')
      .then((r) => r?.pushManager.getSubscription())
      .then((s) => setPushState(s ? 'on' : 'off'), () => setPushState('off'));
  }, []);

  const saveWebhook = async (e: Event) => {
    e.preventDefault();
    setSaving(true);
    try {
      await put('/notifications', { webhookUrl: webhook.trim() || null });
      toast({ kind: 'ok', title: webhook.trim() ? 'Webhook saved' : 'Webhook removed' });
      await load();
    } catch (err) {
      errorToast(err, 'The webhook was not saved');
    } finally {
      setSaving(false);
    }
  };

  const enablePush = async () => {
    if (!settings) return;
    setPushState('working');
    try {
      const permission = await Notification.requestPermission();
      if (permission !== 'granted') {
        setPushState(permission === 'denied' ? 'denied' : 'off');
        return;
      }
      const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
      await navigator.serviceWorker.ready;
      const sub =
        (await reg.pushManager.getSubscription()) ??
        (await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(settings.vapidPublicKey) as BufferSource }));
      await post('/notifications/subscriptions', sub.toJSON());
      setPushState('on');
      toast({ kind: 'ok', title: 'Push notifications are on for this browser' });
      await load();
    } catch (err) {
      setPushState('off');
      errorToast(err, 'Push could not be enabled');
    }
  };

  const test = async () => {
    setTesting(true);
    try {
      const r = await post<{ push: number; webhook: boolean }>('/notifications/test', {});
      toast({ kind: 'ok', title: 'Test sent', body: `Push: ${r.push} browser(s); webhook: ${r.webhook ? 'delivered' : 'not delivered'}.` });
    } catch (err) {
      errorToast(err, 'Test notification');
    } finally {
      setTesting(false);
    }
  };

  return (
    <section class="page narrow" aria-labelledby="settings-title">
      <div class="page-head">
        <h1 id="settings-title">Settings</h1>
      </div>

      <div class="card section">
        <h2>Notifications</h2>
        <p class="muted">You are told when a turn finishes or fails, and when an agent waits for your approval: here in the app, and through the channels below.</p>
        {error ? (
          <ErrorBox error={error} onRetry={load} />
        ) : !settings ? (
          <Spinner label="Loading settings…" />
        ) : (
          <>
            <form class="form" onSubmit={saveWebhook}>
              <div class="field">
                <label for="webhook">Webhook URL (ntfy-compatible)</label>
                <input id="webhook" type="url" inputMode="url" value={webhook} onInput={(e) => setWebhook((e.target as HTMLInputElement).value)} placeholder="https://ntfy.sh/your-topic" spellcheck={false} autocapitalize="off" />
                <p class="hint">Each notification is POSTed with the message as the body and a Title header. Empty removes it.</p>
              </div>
              <div class="row-end">
                <button type="submit" class="btn" disabled={saving || webhook.trim() === (settings.webhookUrl ?? '')}>
                  {saving ? 'Saving…' : 'Save webhook'}
                </button>
              </div>
            </form>

            <div class="push-row">
              <div>
                <h3>Push to this browser</h3>
                <p class="muted small">
                  {pushState === 'on'
                    ? 'On for this browser.'
                    : pushState === 'denied'
                      ? 'Notifications are blocked for this site in the browser’s settings.'
                      : pushState === 'unsupported'
                        ? 'This browser cannot receive push notifications (on iPhone: add this page to the Home Screen first).'
                        : 'Off for this browser.'}{' '}
                  {settings.subscriptions} browser(s) subscribed in all.
                </p>
              </div>
              <button type="button" class="btn primary" onClick={enablePush} disabled={pushState === 'on' || pushState === 'unsupported' || pushState === 'denied' || pushState === 'working'}>
                {pushState === 'working' ? 'Enabling…' : pushState === 'on' ? 'Enabled' : 'Enable push'}
              </button>
            </div>

            <div class="row-end">
              <button type="button" class="btn" onClick={test} disabled={testing}>
                {testing ? 'Sending…' : 'Send test'}
              </button>
            </div>
          </>
        )}
      </div>

      <div class="card section">
        <h2>Account</h2>
        <p>
          Logged in as <strong>{props.me.user.name}</strong>
          {props.me.user.admin ? ' (admin)' : ''}.
        </p>
      </div>
    </section>
  );
}
