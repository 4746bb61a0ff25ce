#!/usr/bin/env node
/**
 * End-to-end checks of the built web UI (dist/ui) in Debian's Chromium against ui/mock-server.mjs: log in, the
 * dashboard, launch with progress, batch selection, a 10,000-event conversation (opens fast, only a screenful in
 * the DOM), a live stream that drops and resends (each event once), the queue (edit, cancel), interrupt,
 * approvals, changes and commit, files (view, edit, save), settings. Prints "N passed, N failed".
 *
 *   node scripts/build-ui.mjs && node ui/e2e.mjs [--refuse-sse] [--chromium /usr/bin/chromium]
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values } = parseArgs({ options: { chromium: { type: 'string', default: process.env.CHROMIUM ?? '/usr/bin/chromium' }, 'refuse-sse': { type: 'boolean', default: false } } });
const port = 7600 + Math.floor(Math.random() * 300);
const base = `http://127.0.0.1:${port}`;
const mock = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'mock-server.mjs'), '--port', String(port), ...(values['refuse-sse'] ? ['--refuse-sse'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((resolve) => mock.stdout.once('data', resolve));

const browser = await chromium.launch({
  executablePath: values.chromium,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
let passed = 0;
let failed = 0;
const errors = [];

async function check(name, f) {
  try {
    await f();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}: ${(e && e.message) || e}`.split('\n')[0]);
  }
}
const expect = (cond, what) => {
  if (!cond) throw new Error(what);
};

try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  page.setDefaultTimeout(10_000);
  const go = async (hash) => {
    await page.evaluate((h) => (location.hash = h), hash);
    await page.waitForTimeout(300);
  };

  await check('login with a token', async () => {
    await page.goto(base + '/');
    await page.fill('#token', 'nope');
    await page.click('button[type=submit]');
    await page.waitForSelector('.form-error');
    await page.fill('#token', 'cvm_test');
    await page.click('button[type=submit]');
    await page.waitForSelector('.topbar');
  });

  await check('dashboard shows the workspaces live, with the approvals banner', async () => {
    await page.waitForSelector('.ws-card');
    expect((await page.$$('.ws-card')).length === 3, 'three cards');
    await page.waitForSelector('.approval-banner');
  });

  await check('batch selection', async () => {
    const boxes = await page.$$('.ws-card input[type=checkbox]');
    await boxes[0].check();
    await boxes[1].check();
    expect((await page.textContent('.batch-bar')).includes('2 selected'), 'batch bar');
    await page.click('.batch-bar .icon-btn');
    expect(!(await page.$('.batch-bar')), 'cleared');
  });

  await check('launch shows progress and opens the new workspace', async () => {
    await page.click('text=Launch');
    await page.fill('#l-target', 'https://github.com/example/new.git');
    await page.fill('#l-name', 'brand-new');
    await page.click('.dialog button[type=submit]');
    await page.waitForSelector('.progress li');
    await page.waitForFunction(() => location.hash.startsWith('#/w/new-'), null, { timeout: 10_000 });
    await page.waitForSelector('#nc-agent');
  });

  await check('a 10,000-event conversation opens in under 3 s with only a screenful in the DOM', async () => {
    const want = String(await page.evaluate(async () => (await (await fetch('/api/v1/conversations/c-big')).json()).lastSeq));
    const t0 = Date.now();
    await go('#/w/brisk-river-1234/c/c-big');
    await page.waitForFunction((w) => document.querySelector('.conversation')?.dataset.lastSeq === w && document.querySelectorAll('.vrow').length > 0, want, { timeout: 15_000 });
    const ms = Date.now() - t0;
    const dom = await page.$$eval('.vrow', (r) => r.length);
    expect(ms < 3000, `took ${ms} ms`);
    expect(dom < 80, `${dom} rows in the DOM`);
    const atEnd = await page.$eval('.vlist', (el) => el.scrollHeight - el.scrollTop - el.clientHeight < 60);
    expect(atEnd, 'opens at the latest event');
  });

  await check('a long tool result is collapsed and expands', async () => {
    await page.$eval('.vlist', (el) => (el.scrollTop = 0));
    await page.waitForTimeout(300);
    const btn = await page.waitForSelector('.tool-result .link-btn');
    await btn.click();
    await page.waitForSelector('.tool-result .link-btn[aria-expanded=true]');
  });

  await check('a live stream that drops and resends shows each event once', async () => {
    await go('#/w/brisk-river-1234/c/c-live');
    await page.waitForSelector('.conversation[data-last-seq]');
    await page.waitForTimeout(values['refuse-sse'] ? 4000 : 8000); // past at least one cut of the stream
    const r = await page.$eval('.conversation', (el) => ({ rows: Number(el.dataset.rows), last: Number(el.dataset.lastSeq) }));
    const events = await page.evaluate(async (from) => (await (await fetch('/api/v1/conversations/c-live/events?from=1&limit=10000')).json()).filter((e) => e.seq <= from), r.last);
    const shown = events.filter((e) => !['message.queued', 'message.cancelled', 'tool.result', 'approval.decided', 'agent.started', 'session.started'].includes(e.type) && !(e.type === 'agent.exited' && !e.data.code)).length;
    expect(r.rows === shown, `${r.rows} rows for ${shown} displayable events up to ${r.last}`);
  });

  await check('the queue: edit puts the text back, cancel removes it', async () => {
    await page.waitForSelector('.queued');
    await page.click('.queued >> text=Edit');
    await page.waitForFunction(() => document.querySelector('#compose-text').value.includes('README'));
    await page.waitForFunction(() => !document.querySelector('.queued'));
    await page.click('button[aria-label="Queue message"]');
    await page.waitForSelector('.queued');
    await page.click('.queued >> text=Cancel');
    await page.waitForFunction(() => !document.querySelector('.queued'));
  });

  await check('approve from the approvals page', async () => {
    await go('#/approvals');
    await page.waitForSelector('.approval-card');
    const n = (await page.$$('.approval-card')).length;
    await page.click('.approval-card >> text=Approve');
    await page.waitForFunction((k) => document.querySelectorAll('.approval-card').length === k - 1, n);
  });

  await check('interrupt while working', async () => {
    await go('#/w/brisk-river-1234/c/c-live');
    await page.click('button[aria-label="Interrupt the agent"]');
    await page.waitForSelector('.ev.meta >> text=Turn interrupted');
  });

  await check('changes: per-file diffs, commit', async () => {
    await go('#/w/brisk-river-1234/changes');
    await page.waitForSelector('.diff-file');
    expect((await page.$$('.dl.add')).length > 0 && (await page.$$('.dl.del')).length > 0, 'added and removed lines');
    await page.fill('#commit-msg', 'Add a health endpoint');
    await page.click('text=Commit & push');
    await page.waitForSelector('.toast >> text=/Committed f00dfeed and pushed/');
  });

  await check('files: open, edit, save', async () => {
    await go('#/w/brisk-river-1234/files');
    await page.click('.file-row >> text=README.md');
    await page.waitForSelector('.file-text');
    await page.click('.file-view button:text-is("Edit")');
    await page.fill('#file-editor', '# changed\n');
    await page.click('.file-view button:text-is("Save")');
    await page.waitForSelector('.file-text >> text=# changed');
  });

  await check('settings: save a webhook, send a test (in-app toast)', async () => {
    await go('#/settings');
    await page.fill('#webhook', 'https://ntfy.example/topic');
    await page.click('text=Save webhook');
    await page.waitForSelector('.toast >> text=Webhook saved');
    await page.click('text=Send test');
    await page.waitForSelector('.toast >> text=claude-vm test');
  });

  await check('no page errors', async () => expect(errors.length === 0, errors.join('; ')));
  await context.close();
} finally {
  await browser.close();
  mock.kill();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
