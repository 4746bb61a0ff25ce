/**
 * The auth matrix: every route in GET /api/v1/openapi.json × {no token, bad token, expired, revoked, deleted user}
 * is refused with 401 (the public routes excepted), and another user's token finds nothing of ours on any route.
 * Then the web session (cookie, CSRF, Origin), read-only tokens, input validation and the audit log. Against a
 * real `claude-vm server` subprocess, once on SQLite and once on PostgreSQL.
 *
 * User A owns real things: a local workspace (no Docker needed), a conversation in it, a provider "a-box" and
 * tokens. User B is a second, non-admin user; D is a user whose token is kept after D is deleted.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connectDb } from '../src/store/db.js';
import { PUBLIC_ROUTES } from '../src/server/api/index.js';
import { generateSshKey } from '../src/core/ssh-keys.js';
import { freshDatabase, testPostgresUrl } from './support/postgres.js';
import { request, startServerProcess, wsUpgrade, type Answer, type RequestOptions, type ServerProcess } from './support/server.js';

interface Operation {
  method: string;
  path: string;
  /** Declared with `security: []`. */
  isPublic: boolean;
  websocket: boolean;
}

interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, { security?: unknown[]; description?: string }>>;
}

interface Account {
  id: string;
  name: string;
  token: string;
  tokenId: string;
}

interface World {
  s: ServerProcess;
  admin: string;
  A: Account;
  B: Account;
  expired: { token: string; id: string };
  revoked: { token: string; id: string };
  deleted: { token: string; userId: string };
  ws: { id: string; projectDir: string; projectId: string };
  /** A's conversation; `real` false when none could be created and `id` names nothing. */
  conv: { id: string; real: boolean };
  /** Every token secret the test has seen: none may show up in the audit log. */
  secrets: Set<string>;
  /** A's SSH key (its id), and a public key the add-key route is probed with. */
  sshKeyId: string;
  sshPublicKey: string;
}

const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);
// Queued messages exist only while an agent's turn runs, and approval requests only when an agent asks; this test
// runs no agent, so these two ids name nothing (for A either). B's 404 on them shows less than on the others.
const NO_QUEUE_ID = 'q_none_exists';
const NO_APPROVAL_ID = 'apr_none_exists';
const ADMIN_ONLY = new Set(['GET /api/v1/users', 'POST /api/v1/users', 'DELETE /api/v1/users/{id}']);
const COLLECTIONS = ['/api/v1/workspaces', '/api/v1/conversations', '/api/v1/providers', '/api/v1/tokens', '/api/v1/audit', '/api/v1/approvals', '/api/v1/agents'];
const FOREIGN_ORIGIN = 'http://evil.example';

const key = (op: { method: string; path: string }) => `${op.method} ${op.path}`;

function operations(doc: OpenApiDocument): Operation[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => METHODS.has(m))
      .map(([m, o]) => ({ method: m.toUpperCase(), path, isPublic: Array.isArray(o.security) && o.security.length === 0, websocket: /^WebSocket/.test(o.description ?? '') })),
  );
}

/** The path with A's real ids in it; a parameter this test does not know fails the test (no route is skipped). */
function fill(path: string, w: World): string {
  return path.replace(/\{(\w+)\}/g, (_m, name: string, offset: number) => {
    const owner = path.slice(0, offset).split('/').filter(Boolean).at(-1);
    const value =
      name === 'agent' ? 'claude'
      : name === 'queueId' ? NO_QUEUE_ID
      : owner === 'users' ? w.A.id
      : owner === 'tokens' ? w.A.tokenId
      : owner === 'providers' ? 'a-box'
      : owner === 'workspaces' ? w.ws.id
      : owner === 'conversations' ? w.conv.id
      : owner === 'approvals' ? NO_APPROVAL_ID
      : owner === 'ports' ? '8000'
      : owner === 'ssh-keys' ? w.sshKeyId
      : undefined;
    if (value === undefined) throw new Error(`The auth matrix does not know what {${name}} in ${path} names: teach fill() about it.`);
    return encodeURIComponent(value);
  });
}

/** A valid query and body for each route, so a refusal is about credentials or ownership, never about input. */
function inputs(op: Operation, w: World): { query: string; body?: unknown } {
  const q = (s: string) => ({ query: `?${s}` });
  switch (key(op)) {
    case 'POST /api/v1/users': return { query: '', body: { name: 'mallory', admin: true } };
    case 'POST /api/v1/tokens': return { query: '', body: { name: 'probe' } };
    case 'GET /api/v1/audit': return q('limit=1000');
    case 'POST /api/v1/providers': return { query: '', body: { name: 'a-box', type: 'docker' } };
    case 'PATCH /api/v1/providers/{name}': return { query: '', body: { options: {} } };
    case 'PUT /api/v1/agents/{agent}': return { query: '', body: { workspace: w.ws.id, model: 'probe-model' } };
    case 'POST /api/v1/workspaces': return { query: '', body: { target: w.ws.id } };
    case 'POST /api/v1/workspaces/{id}/stop': return { query: '', body: {} };
    case 'DELETE /api/v1/workspaces/{id}': return q('purge=true');
    case 'POST /api/v1/workspaces/{id}/agents/{agent}/install': return { query: '', body: {} };
    case 'GET /api/v1/workspaces/{id}/files': return q('path=.');
    case 'PUT /api/v1/workspaces/{id}/files': return { query: '', body: { path: 'probe.txt', contentBase64: '' } };
    case 'DELETE /api/v1/workspaces/{id}/files': return q('path=probe.txt');
    case 'GET /api/v1/workspaces/{id}/exec': return q('argv=echo&argv=probe-ok');
    case 'POST /api/v1/conversations': return { query: '', body: { workspace: w.ws.id, agent: 'claude' } };
    case 'POST /api/v1/conversations/{id}/messages': return { query: '', body: { text: 'probe' } };
    case 'POST /api/v1/approvals/{id}': return { query: '', body: { decision: 'deny' } };
    case 'POST /api/v1/ssh-keys': return { query: '', body: { publicKey: w.sshPublicKey } };
    case 'PUT /api/v1/notifications': return { query: '', body: { webhookUrl: null } };
    case 'POST /api/v1/notifications/subscriptions': return { query: '', body: { endpoint: 'https://push.example/probe', keys: { p256dh: 'probe', auth: 'probe' } } };
    case 'POST /api/v1/workspaces/{id}/git/commit': return { query: '', body: { message: 'probe' } };
    case 'PUT /api/v1/workspaces/{id}/rules': return { query: '', body: { text: 'ask probe\n' } };
    default: return { query: '' };
  }
}

function url(op: Operation, w: World): string {
  return fill(op.path, w) + inputs(op, w).query;
}

function errorCode(a: Answer): string | undefined {
  return (a.json as { error?: { code?: string } } | undefined)?.error?.code;
}

function show(a: { status: number; text?: string; body?: string }): string {
  return `${a.status} ${(a.text ?? a.body ?? '').slice(0, 200)}`;
}

/** Records any token secret in an answer, so the audit check knows every secret that exists. */
function remember(w: World, a: Answer): Answer {
  const secret = (a.json as { secret?: unknown } | undefined)?.secret;
  if (typeof secret === 'string') w.secrets.add(secret);
  return a;
}

async function must(a: Promise<Answer>, status: number, what: string): Promise<Answer> {
  const r = await a;
  assert.equal(r.status, status, `${what}: ${show(r)}`);
  return r;
}

async function setup(s: ServerProcess): Promise<World> {
  const call = (method: string, path: string, o: RequestOptions = {}) => request(s.url, method, path, o);
  const secrets = new Set([s.adminToken]);
  const addUser = async (name: string) => {
    const r = await must(call('POST', '/api/v1/users', { token: s.adminToken, body: { name, admin: false } }), 201, `POST /users ${name}`);
    const j = r.json as { user: { id: string }; token: { id: string }; secret: string };
    secrets.add(j.secret);
    return { id: j.user.id, name, token: j.secret, tokenId: j.token.id };
  };
  const A = await addUser('alice');
  const B = await addUser('bob');
  const D = await addUser('dave');
  const newToken = async (body: object) => {
    const r = await must(call('POST', '/api/v1/tokens', { token: A.token, body }), 201, 'POST /tokens');
    const j = r.json as { token: { id: string }; secret: string };
    secrets.add(j.secret);
    return { token: j.secret, id: j.token.id };
  };

  // Each bad credential works first, so its later 401 is about what happened to it and nothing else.
  const expired = await newToken({ name: 'expires', expiresInDays: 1 });
  const revoked = await newToken({ name: 'revoked' });
  for (const [name, token] of [['expired', expired.token], ['revoked', revoked.token], ['deleted user', D.token]] as const) {
    await must(call('GET', '/api/v1/me', { token }), 200, `${name} token before it goes bad`);
  }
  // The API cannot make a token that has already expired; the database can, and the server must check the date.
  const db = await connectDb(s.dbUrl);
  try {
    const r = await db.run('UPDATE tokens SET expires_at = ? WHERE id = ?', ['2000-01-01T00:00:00.000Z', expired.id]);
    assert.equal(r.changes, 1);
  } finally {
    await db.close();
  }
  await must(call('DELETE', `/api/v1/tokens/${revoked.id}`, { token: A.token }), 200, 'revoke a token');
  await must(call('DELETE', `/api/v1/users/${D.id}`, { token: s.adminToken }), 200, 'delete user D');

  const up = await must(call('POST', '/api/v1/workspaces', { token: A.token, body: { provider: 'local' } }), 201, "A's local workspace");
  const ws = (up.json as { workspace: { id: string; projectDir: string; project: { id: string } } }).workspace;
  await must(call('POST', '/api/v1/providers', { token: A.token, body: { name: 'a-box', type: 'docker', options: {} } }), 201, "A's provider");

  // A conversation needs the workspace's daemon, which the local provider runs on this host. Creating one starts
  // no agent. Should it fail, the conversation routes are probed with an id that names nothing (and say so).
  const c = await call('POST', '/api/v1/conversations', { token: A.token, body: { workspace: ws.id, agent: 'claude' } });
  const conv = c.status === 201 ? { id: (c.json as { id: string }).id, real: true } : { id: 'c_none_exists', real: false };
  const key = await must(call('POST', '/api/v1/ssh-keys', { token: A.token, body: { publicKey: generateSshKey('alice@laptop').publicKey } }), 201, "A's SSH key");
  return {
    s, admin: s.adminToken, A, B, expired, revoked, deleted: { token: D.token, userId: D.id },
    ws: { id: ws.id, projectDir: ws.projectDir, projectId: ws.project.id }, conv, secrets,
    sshKeyId: (key.json as { id: string }).id, sshPublicKey: generateSshKey('probe').publicKey,
  };
}

/** Strings that are A's: none may appear in an answer to B unless B's own request contained it. */
function markersOfA(w: World): string[] {
  return [w.sshKeyId, w.A.id, w.A.name, w.A.token, w.A.tokenId, w.expired.id, w.expired.token, w.revoked.id, w.revoked.token, w.ws.id, w.ws.projectDir, w.ws.projectId, 'a-box', ...(w.conv.real ? [w.conv.id] : [])];
}

for (const backend of ['sqlite', 'postgres'] as const) {
  test(`auth matrix over every API route, on ${backend}`, { timeout: 600_000 }, async (t) => {
    let db: string | undefined;
    if (backend === 'postgres') {
      const server = await testPostgresUrl();
      if (!server) return void t.skip('CLAUDE_VM_SKIP_PG=1');
      db = await freshDatabase(server);
    }
    const s = await startServerProcess({ db, args: ['--launches-per-hour', '100'] });
    let w: World | undefined;
    try {
      w = await setup(s);
      if (!w.conv.real) t.diagnostic(`no conversation could be created; conversation routes are probed with the id ${w.conv.id}, which names nothing`);
      await matrix(t, w);
    } finally {
      if (w) await request(s.url, 'DELETE', `/api/v1/workspaces/${w.ws.id}?purge=true`, { token: w.A.token }).catch(() => undefined);
      await s.stop();
      const errors = s.log().split('\n').filter((l) => l.startsWith('claude-vm server: ')).slice(0, 20);
      for (const line of errors) t.diagnostic(`server log: ${line}`);
    }
  });
}

async function matrix(t: TestContext, w: World): Promise<void> {
  const base = w.s.url;
  const call = (method: string, path: string, o: RequestOptions = {}) => request(base, method, path, o).then((a) => remember(w, a));
  const docAnswer = await must(call('GET', '/api/v1/openapi.json'), 200, 'the API document');
  const doc = docAnswer.json as OpenApiDocument;
  const ops = operations(doc);

  await t.test('the document lists every route, the WebSocket ones included, and which are public', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(ops.length >= 40, `only ${ops.length} operations in the document`);
    assert.deepEqual(ops.filter((o) => o.websocket).map(key).sort(), [
      'GET /api/v1/conversations/{id}/tui', 'GET /api/v1/workspaces/{id}/exec', 'GET /api/v1/workspaces/{id}/ports/{port}',
      'GET /api/v1/workspaces/{id}/ssh', 'GET /api/v1/workspaces/{id}/terminal',
    ]);
    // Public in the document means no credentials; the auth middleware lets PUBLIC_PATHS through. A new public route
    // must be added here on purpose (the matrix below then needs an expectation for it).
    const open = ops.filter((o) => o.isPublic);
    assert.deepEqual(open.map(key).sort(), ['GET /api/v1/health', 'POST /api/v1/auth/session', 'POST /api/v1/internal/daemon-call']);
    assert.deepEqual(open.filter((o) => !PUBLIC_ROUTES.has(key(o))).map(key), [], 'public in the document but authenticated by the middleware');
    t.diagnostic(`${ops.length} operations in the document, ${ops.filter((o) => o.isPublic).length} public, ${ops.filter((o) => o.websocket).length} WebSocket`);
  });

  const badCredentials: Array<[string, string | undefined]> = [
    ['no token', undefined],
    ['bad token', 'cvm_garbage'],
    ['expired', w.expired.token],
    ['revoked', w.revoked.token],
    ['deleted user', w.deleted.token],
  ];

  await t.test('every route refuses missing, bad, expired, revoked and deleted-user credentials with 401', async () => {
    const failures: string[] = [];
    const tested = new Set<string>();
    let checks = 0;
    for (const op of ops) {
      for (const [name, token] of badCredentials) {
        checks++;
        if (op.isPublic) {
          if (key(op) === 'GET /api/v1/health') {
            const a = await call('GET', url(op, w), { token });
            if (a.status !== 200) failures.push(`${key(op)} [${name}]: want 200 (public), got ${show(a)}`);
          } else if (key(op) === 'POST /api/v1/auth/session') {
            // Logging in takes its credential in the body.
            const a = await call('POST', url(op, w), { body: token ? { token } : {} });
            const want = token ? 401 : 400;
            if (a.status !== want) failures.push(`${key(op)} [${name} in the body]: want ${want}, got ${show(a)}`);
          } else if (key(op) === 'POST /api/v1/internal/daemon-call') {
            // Between processes of one deployment: only a MAC under the shared key opens it, never a user's token.
            const a = await call('POST', url(op, w), { token, body: { workspaceId: w.ws.id, method: 'ping', params: {}, at: Date.now() } });
            if (a.status !== 401) failures.push(`${key(op)} [${name}]: want 401, got ${show(a)}`);
          } else {
            failures.push(`${key(op)} is public in the document and this test has no expectation for it`);
          }
        } else {
          const { body } = inputs(op, w);
          const a = await call(op.method, url(op, w), { token, body });
          if (a.status !== 401 || errorCode(a) !== 'unauthorized') failures.push(`${key(op)} [${name}]: want 401 unauthorized, got ${show(a)}`);
        }
        if (op.websocket) {
          checks++;
          const u = await wsUpgrade(base, url(op, w), token ? { authorization: `Bearer ${token}` } : {});
          if (u.status !== 401) failures.push(`${key(op)} WebSocket upgrade [${name}]: want 401, got ${show(u)}`);
        }
      }
      tested.add(key(op));
    }
    t.diagnostic(`${tested.size} of ${ops.length} operations × ${badCredentials.length} bad credentials: ${checks} checks, WebSocket upgrades included; ${failures.length} failed`);
    assert.deepEqual(failures, []);
    assert.equal(tested.size, ops.length, 'every operation in the document was tested');
  });

  await t.test('the workspace tunnel takes only tunnel tokens: an API token is refused on upgrade', async () => {
    const login = await must(call('POST', '/api/v1/auth/session', { body: { token: w.A.token } }), 200, 'log in');
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const cases: Array<[string, Record<string, string>]> = [
      ...badCredentials.map(([name, token]): [string, Record<string, string>] => [name, token ? { authorization: `Bearer ${token}` } : {}]),
      ["A's valid API token", { authorization: `Bearer ${w.A.token}` }],
      ["the admin's API token", { authorization: `Bearer ${w.admin}` }],
      ["A's session cookie", { cookie, origin: base }],
    ];
    const failures: string[] = [];
    for (const [name, headers] of cases) {
      const u = await wsUpgrade(base, '/api/v1/tunnel', headers);
      if (u.status !== 401) failures.push(`/api/v1/tunnel [${name}]: want 401, got ${show(u)}`);
    }
    assert.deepEqual(failures, []);
  });

  await t.test("another user's token finds nothing of A's on any route", async () => {
    const markers = markersOfA(w);
    const failures: string[] = [];
    const tested = new Set<string>();
    const check = (what: string, a: { status: number; text?: string; body?: string }, want: number[], sent: string) => {
      if (!want.includes(a.status)) failures.push(`${what} [B's token]: want ${want.join(' or ')}, got ${show(a)}`);
      const text = a.text ?? a.body ?? '';
      const leaked = markers.filter((m) => text.includes(m) && !sent.includes(m));
      if (leaked.length) failures.push(`${what} [B's token]: the answer shows A's ${leaked.join(', ')}: ${text.slice(0, 300)}`);
    };
    for (const op of ops) {
      const k = key(op);
      const { body } = inputs(op, w);
      const path = url(op, w);
      const sent = path + JSON.stringify(body ?? '');
      const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      let want: number[];
      let extra: ((a: Answer) => string | undefined) | undefined;
      if (ADMIN_ONLY.has(k)) want = [403];
      else if (params.some((p) => p !== 'agent')) want = [404];
      else if (k === 'PUT /api/v1/agents/{agent}') want = [404]; // its body names A's workspace
      else if (op.method === 'GET' && COLLECTIONS.includes(op.path)) {
        want = [200];
        extra = (a) => (Array.isArray(a.json) ? undefined : `${k}: want a JSON array, got ${a.text.slice(0, 200)}`);
      } else if (k === 'GET /api/v1/me') {
        want = [200];
        extra = (a) => ((a.json as { user?: { id?: string } } | undefined)?.user?.id === w.B.id ? undefined : `${k}: not B: ${a.text}`);
      } else if (k === 'GET /api/v1/health' || k === 'GET /api/v1/provider-types') want = [200];
      else if (k === 'POST /api/v1/workspaces') want = [404]; // target: A's workspace, which B must not resume
      else if (k === 'POST /api/v1/workspaces/import') want = [400]; // no tar: refused before anything is made
      else if (k === 'POST /api/v1/conversations') want = [404]; // in A's workspace
      else if (k === 'POST /api/v1/tokens') want = [201]; // B's own token
      // Provider names are one namespace, so B cannot have "a-box" too; it must neither get nor change A's.
      else if (k === 'POST /api/v1/providers') want = [409];
      else if (k === 'POST /api/v1/auth/session') {
        want = [200];
        extra = (a) => ((a.json as { user?: { id?: string } } | undefined)?.user?.id === w.B.id ? undefined : `${k}: a session for someone else: ${a.text}`);
      } else if (k === 'DELETE /api/v1/auth/session') want = [200]; // nothing to log out for a bearer token
      else if (k === 'POST /api/v1/internal/daemon-call') want = [401]; // a user's token never opens it
      // B's own things: a login link, B's live stream, B's notification settings and keys (none of A's appear).
      else if (k === 'POST /api/v1/auth/login-links' || k === 'POST /api/v1/ssh-keys' || k === 'POST /api/v1/notifications/subscriptions') want = [201];
      else if (k === 'GET /api/v1/stream' || k === 'GET /api/v1/notifications' || k === 'PUT /api/v1/notifications' || k === 'GET /api/v1/ssh-keys') want = [200];
      else if (k === 'POST /api/v1/notifications/test') want = [200, 409]; // to B's own channels (409: B has none)
      else {
        failures.push(`${k}: this test has no expectation for another user's token: add one`);
        continue;
      }
      const a = await call(op.method, path, k === 'POST /api/v1/auth/session' ? { body: { token: w.B.token } } : { token: w.B.token, body });
      check(k, a, want, sent);
      const more = a.status === want[0] ? extra?.(a) : undefined;
      if (more) failures.push(more);
      if (op.websocket) check(`${k} WebSocket upgrade`, await wsUpgrade(base, path, { authorization: `Bearer ${w.B.token}` }), [404], sent);
      tested.add(k);
    }
    // Prefixes resolve too (ids are typed short): a prefix of A's id must not be found, nor be "ambiguous".
    for (const path of [`/api/v1/workspaces/${w.ws.id.slice(0, 4)}`, ...(w.conv.real ? [`/api/v1/conversations/${w.conv.id.slice(0, 4)}`] : [])]) {
      check(`GET ${path} (a prefix of A's id)`, await call('GET', path, { token: w.B.token }), [404], path);
    }
    check(`GET /api/v1/conversations?workspace=<A's>`, await call('GET', `/api/v1/conversations?workspace=${w.ws.id}`, { token: w.B.token }), [404, 200], w.ws.id);
    t.diagnostic(`${tested.size} of ${ops.length} operations with B's token on A's things; ${failures.length} failed`);
    assert.deepEqual(failures, []);
    assert.equal(tested.size, ops.length, 'every operation in the document was tested');

    // Nothing B tried changed A's things.
    const mine = await must(call('GET', `/api/v1/workspaces/${w.ws.id}`, { token: w.A.token }), 200, "A's workspace after B's attempts");
    assert.equal((mine.json as { status: string }).status, 'running');
    const tokens = (await must(call('GET', '/api/v1/tokens', { token: w.A.token }), 200, "A's tokens")).json as Array<{ id: string; revokedAt: string | null }>;
    assert.equal(tokens.find((x) => x.id === w.A.tokenId)?.revokedAt, null, "A's token is not revoked by B");
    const providers = (await must(call('GET', '/api/v1/providers', { token: w.A.token }), 200, "A's providers")).json as Array<{ name: string }>;
    assert.ok(providers.some((p) => p.name === 'a-box'), "A's provider is still there");
    const agents = (await must(call('GET', '/api/v1/agents', { token: w.A.token }), 200, "A's agent settings")).text;
    assert.ok(!agents.includes('probe-model'), "B did not change A's agent settings");
    if (w.conv.real) await must(call('GET', `/api/v1/conversations/${w.conv.id}`, { token: w.A.token }), 200, "A's conversation");
    const users = (await must(call('GET', '/api/v1/users', { token: w.admin }), 200, 'users')).json as Array<{ id: string; admin: boolean }>;
    assert.equal(users.find((u) => u.id === w.A.id)?.admin, false);
    assert.ok(!users.some((u) => (u as { name?: string }).name === 'mallory'), 'no user was added without an admin');
  });

  await t.test("A's own token reaches every GET route (so the refusals above are not vacuous)", async () => {
    const failures: string[] = [];
    const skipped: string[] = [];
    for (const op of ops.filter((o) => o.method === 'GET')) {
      if (!w.conv.real && op.path.startsWith('/api/v1/conversations/{id}')) {
        skipped.push(key(op));
        continue;
      }
      const token = ADMIN_ONLY.has(key(op)) ? w.admin : w.A.token;
      const a = await call('GET', url(op, w), { token });
      if ([401, 403, 404].includes(a.status)) failures.push(`${key(op)} [${token === w.admin ? 'admin' : "A's"} token]: got ${show(a)}`);
    }
    // A WebSocket with the right token is upgraded and runs.
    const u = await wsUpgrade(base, `/api/v1/workspaces/${w.ws.id}/exec?argv=echo&argv=probe-ok`, { authorization: `Bearer ${w.A.token}` });
    if (u.status !== 101) failures.push(`exec WebSocket [A's token]: want 101, got ${show(u)}`);
    else if (!Buffer.concat(u.frames).toString().includes('probe-ok')) failures.push(`exec WebSocket [A's token]: no output in ${u.frames.length} frames`);
    assert.deepEqual(failures, []);
    if (skipped.length) t.diagnostic(`not checked for A (no real conversation): ${skipped.join(', ')}`);
  });

  await t.test('a web session: the cookie, its CSRF token and the Origin check', async () => {
    const login = await must(call('POST', '/api/v1/auth/session', { body: { token: w.A.token } }), 200, 'log in');
    const setCookie = login.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^cvm_session=cvm_[^;]+;/);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    const cookie = setCookie.split(';')[0]!;
    const session = cookie.slice('cvm_session='.length);
    w.secrets.add(session);
    const csrf = (login.json as { csrfToken: string }).csrfToken;
    assert.match(csrf, /^[0-9a-f]{20,}$/);

    const me = await must(call('GET', '/api/v1/me', { headers: { cookie } }), 200, 'GET /me with the cookie');
    assert.equal((me.json as { user: { id: string } }).user.id, w.A.id);
    assert.equal((me.json as { csrfToken?: string }).csrfToken, csrf);
    await must(call('GET', '/api/v1/me', { headers: { cookie, origin: base } }), 200, 'GET /me with the cookie from our own origin');
    await must(call('GET', '/api/v1/me', { headers: { cookie, origin: FOREIGN_ORIGIN } }), 403, 'GET /me with the cookie from a foreign origin');

    const body = { name: 'from the web' };
    await must(call('POST', '/api/v1/tokens', { headers: { cookie }, body }), 403, 'POST with the cookie but no X-CSRF-Token');
    await must(call('POST', '/api/v1/tokens', { headers: { cookie, 'x-csrf-token': 'f'.repeat(40) }, body }), 403, 'POST with a wrong X-CSRF-Token');
    await must(call('POST', '/api/v1/tokens', { headers: { cookie, 'x-csrf-token': csrf }, body }), 201, 'POST with the CSRF token');
    await must(call('POST', '/api/v1/tokens', { headers: { cookie, 'x-csrf-token': csrf, origin: base }, body }), 201, 'POST with the CSRF token from our own origin');
    await must(call('POST', '/api/v1/tokens', { headers: { cookie, 'x-csrf-token': csrf, origin: FOREIGN_ORIGIN }, body }), 403, 'POST with the CSRF token from a foreign origin');

    // A session secret is for the cookie only, and the cookie holds only session secrets.
    await must(call('GET', '/api/v1/me', { token: session }), 401, 'the session secret as a bearer token');
    await must(call('GET', '/api/v1/me', { headers: { cookie: `cvm_session=${w.A.token}` } }), 401, 'an API token in the session cookie');

    // WebSockets are not covered by CORS: an upgrade with the cookie must come from our own origin.
    const exec = `/api/v1/workspaces/${w.ws.id}/exec?argv=echo&argv=probe-ok`;
    const foreign = await wsUpgrade(base, exec, { cookie, origin: FOREIGN_ORIGIN });
    assert.equal(foreign.status, 403, `WebSocket with the cookie from a foreign origin: ${show(foreign)}`);
    const noOrigin = await wsUpgrade(base, exec, { cookie });
    assert.equal(noOrigin.status, 403, `WebSocket with the cookie and no Origin: ${show(noOrigin)}`);
    const own = await wsUpgrade(base, exec, { cookie, origin: base });
    assert.equal(own.status, 101, `WebSocket with the cookie from our own origin: ${show(own)}`);

  });

  await t.test('logging out of a web session ends it', async () => {
    const login = await must(call('POST', '/api/v1/auth/session', { body: { token: w.A.token } }), 200, 'log in');
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    w.secrets.add(cookie.slice('cvm_session='.length));
    const csrf = (login.json as { csrfToken: string }).csrfToken;
    await must(call('GET', '/api/v1/me', { headers: { cookie } }), 200, 'the cookie before logging out');
    // All three steps run, so a failure reports the whole story.
    const noCsrf = await call('DELETE', '/api/v1/auth/session', { headers: { cookie } });
    const out = await call('DELETE', '/api/v1/auth/session', { headers: { cookie, 'x-csrf-token': csrf } });
    const after = await call('GET', '/api/v1/me', { headers: { cookie } });
    assert.deepEqual(
      { 'log out without X-CSRF-Token': noCsrf.status, 'log out with it': out.status, 'GET /me with the cookie afterwards': after.status },
      { 'log out without X-CSRF-Token': 403, 'log out with it': 200, 'GET /me with the cookie afterwards': 401 },
      `answers: ${show(noCsrf)} | ${show(out)} | ${show(after)}`,
    );
    assert.match(out.headers.get('set-cookie') ?? '', /cvm_session=;.*Max-Age=0/);
  });

  await t.test('a read-only token can GET and nothing else', async () => {
    const made = await must(call('POST', '/api/v1/tokens', { token: w.A.token, body: { name: 'reader', readOnly: true } }), 201, 'make a read-only token');
    const { token: info, secret: reader } = made.json as { token: { id: string; scope: string }; secret: string };
    assert.equal(info.scope, 'read');
    const list = await must(call('GET', '/api/v1/workspaces', { token: reader }), 200, 'GET /workspaces read-only');
    assert.ok(list.text.includes(w.ws.id), "the read-only token sees A's workspace");
    await must(call('GET', `/api/v1/workspaces/${w.ws.id}`, { token: reader }), 200, 'GET one workspace read-only');
    await must(call('POST', '/api/v1/tokens', { token: reader, body: { name: 'escalate' } }), 403, 'POST /tokens read-only');
    await must(call('POST', `/api/v1/workspaces/${w.ws.id}/stop`, { token: reader, body: {} }), 403, 'POST stop read-only');
    await must(call('DELETE', `/api/v1/tokens/${w.A.tokenId}`, { token: reader }), 403, 'DELETE a token read-only');
    const mine = await must(call('GET', `/api/v1/workspaces/${w.ws.id}`, { token: w.A.token }), 200, "A's workspace");
    assert.equal((mine.json as { status: string }).status, 'running', 'the read-only POST did not stop it');
    const u = await wsUpgrade(base, `/api/v1/workspaces/${w.ws.id}/exec?argv=echo&argv=probe-ok`, { authorization: `Bearer ${reader}` });
    assert.equal(u.status, 403, `exec WebSocket with a read-only token: ${show(u)}`);
    await must(call('POST', '/api/v1/auth/session', { body: { token: reader } }), 401, 'a web session from a read-only token');
  });

  await t.test('invalid input is a 400 with a JSON error, naming the field', async () => {
    const bad = await must(call('POST', '/api/v1/workspaces', { token: w.A.token, body: { autoStopSeconds: 'soon' } }), 400, 'autoStopSeconds: "soon"');
    assert.equal(errorCode(bad), 'invalid_argument');
    assert.match((bad.json as { error: { message: string } }).error.message, /autoStopSeconds/);
    const name = await must(call('POST', '/api/v1/tokens', { token: w.A.token, body: { name: '' } }), 400, 'a token with an empty name');
    assert.match((name.json as { error: { message: string } }).error.message, /name/);

    const notJson = await call('POST', '/api/v1/workspaces', { token: w.A.token, rawBody: '{not json', headers: { 'content-type': 'application/json' } });
    const noType = await call('POST', '/api/v1/workspaces', { token: w.A.token, rawBody: 'provider=local' });
    const failures = [
      ...(notJson.status === 400 && errorCode(notJson) === 'invalid_argument' ? [] : [`a body that is not JSON: want 400 invalid_argument, got ${show(notJson)}`]),
      ...([400, 415].includes(noType.status) && errorCode(noType) ? [] : [`a body without a JSON content type: want 400 or 415 with a JSON error, got ${show(noType)}`]),
    ];
    assert.deepEqual(failures, []);
  });

  await t.test('the audit log records accounts and logins, and holds no token secret', async () => {
    const a = await must(call('GET', '/api/v1/audit?limit=1000', { token: w.admin }), 200, 'GET /audit as admin');
    const entries = a.json as Array<{ action: string; target: string | null; userId: string | null }>;
    const has = (action: string, target?: string, userId?: string) =>
      entries.some((e) => e.action === action && (target === undefined || e.target === target) && (userId === undefined || e.userId === userId));
    assert.ok(has('user.add', w.A.id), 'user.add for A');
    assert.ok(has('user.add', w.B.id), 'user.add for B');
    assert.ok(has('user.delete', w.deleted.userId), 'user.delete for D');
    assert.ok(has('token.revoke', w.revoked.id, w.A.id), 'token.revoke');
    assert.ok(has('auth.login', undefined, w.A.id), 'auth.login for A');
    assert.ok(has('auth.login.failed'), 'auth.login.failed');
    const leaked = [...w.secrets].filter((secret) => a.text.includes(secret));
    assert.deepEqual(leaked, [], 'token secrets in the audit log');
    assert.ok(w.secrets.size >= 8, `the check knew ${w.secrets.size} secrets`);

    const own = (await must(call('GET', '/api/v1/audit?limit=1000', { token: w.A.token }), 200, 'GET /audit as A')).json as Array<{ userId: string | null }>;
    assert.ok(own.length > 0);
    assert.deepEqual([...new Set(own.map((e) => e.userId))], [w.A.id], "a user's audit log is theirs only");
  });
}
