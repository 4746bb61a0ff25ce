import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
const token = process.env.TOKEN ?? readFileSync('/tmp/cvm-ui-home/token', 'utf8').trim();
const BASE = process.env.BASE ?? 'http://127.0.0.1:7480';
const [w, h, tag, ...paths] = process.argv.slice(2);
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu','--disable-background-networking','--disable-component-update','--disable-sync','--no-first-run'] });
const mobile = Number(w) < 800;
const ctx = await b.newContext({ viewport: { width: Number(w), height: Number(h) }, isMobile: mobile, hasTouch: mobile, colorScheme: tag.includes('dark') ? 'dark' : 'light' });
const p = await ctx.newPage();
p.on('pageerror', (e) => console.log('PAGEERROR', e.message));
p.on('console', (m) => m.type() === 'error' && console.log('CONSOLE', m.text()));
p.on('response', (r) => { if (r.status() >= 400) console.log('RES', r.status(), r.url()); });
await p.goto(BASE + '/');
await p.fill('#token', token);
await p.click('button[type=submit]');
await p.waitForSelector('.topbar');
for (const path of paths) {
  const i = path.indexOf('|'); const hash = i < 0 ? path : path.slice(0, i); const action = i < 0 ? '' : path.slice(i + 1);
  await p.goto(BASE + '/' + hash);
  await p.waitForTimeout(2000);
  if (action) { await eval(`(async () => { ${action} })()`); await p.waitForTimeout(1500); }
  const name = `/tmp/ui-shots/${tag}-${hash.replace(/[^a-z0-9]+/gi, '_').replace(/^_+|_+$/g, '') || 'dash'}.png`;
  await p.screenshot({ path: name });
  console.log('shot', name);
}
await b.close();
