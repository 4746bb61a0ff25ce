import { chromium } from 'playwright-core';
const BASE = process.argv[2];
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu','--disable-background-networking','--disable-component-update','--disable-sync','--no-first-run'] });
const ctx = await b.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
const p = await ctx.newPage();
p.on('pageerror', (e) => console.log('PAGEERROR', e.message));
await p.goto(BASE + '/');
await p.fill('#token', 'cvm_x');
await p.click('button[type=submit]');
await p.waitForSelector('.topbar');
const want = String(await p.evaluate(async () => (await (await fetch('/api/v1/conversations/c-big')).json()).lastSeq));
const t0 = Date.now();
await p.evaluate(() => (location.hash = '#/w/brisk-river-1234/c/c-big'));
await p.waitForFunction((w) => document.querySelector('.conversation')?.dataset.lastSeq === w && document.querySelectorAll('.vrow').length > 0, want, { timeout: 60000 });
const t1 = Date.now();
const info = await p.evaluate(() => ({ dom: document.querySelectorAll('.vrow').length, rows: document.querySelector('.conversation').dataset.rows, nodes: document.getElementsByTagName('*').length }));
// Scroll through the whole list in steps and time the frames.
const scroll = await p.evaluate(async () => {
  const el = document.querySelector('.vlist');
  const t = performance.now();
  let frames = 0;
  for (let y = el.scrollHeight; y > 0; y -= 4000) {
    el.scrollTop = y;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    frames++;
  }
  return { ms: Math.round(performance.now() - t), steps: frames, top: el.scrollTop, dom: document.querySelectorAll('.vrow').length };
});
console.log(`events ${want}: shown in ${t1 - t0} ms; rows ${info.rows}, in DOM ${info.dom}, elements ${info.nodes}; scroll to top in ${scroll.steps} steps, ${scroll.ms} ms, DOM rows then ${scroll.dom}`);
await b.close();
