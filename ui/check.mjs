#!/usr/bin/env node
/**
 * Looks at the built web UI the way a person would: Debian's Chromium (never a downloaded browser) opens a running
 * control plane, logs in with a token, visits each screen at phone and desktop sizes, takes screenshots, and runs
 * axe-core on each. Fails on serious or critical accessibility violations and on page errors.
 *
 *   node ui/check.mjs --url http://127.0.0.1:7480 --token cvm_… [--out /tmp/ui-shots] [--paths '#/,#/approvals,#/@text=Launch']
 *
 * A path may end with @selector: that is clicked before the screenshot (to open a dialog, say).
 */
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:7480' },
    token: { type: 'string' },
    out: { type: 'string', default: '/tmp/ui-shots' },
    paths: { type: 'string', default: '#/,#/approvals,#/settings' },
    chromium: { type: 'string', default: process.env.CHROMIUM ?? '/usr/bin/chromium' },
    scheme: { type: 'string', default: 'light' },
  },
});
if (!values.token) {
  console.error('check: --token is required (e.g. $CLAUDE_VM_HOME/token)');
  process.exit(2);
}
const token = values.token.startsWith('/') ? readFileSync(values.token, 'utf8').trim() : values.token;
mkdirSync(values.out, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const browser = await chromium.launch({
  executablePath: values.chromium,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
let failures = 0;
try {
  for (const [label, viewport, isMobile] of [
    ['phone', { width: 390, height: 844 }, true],
    ['desktop', { width: 1440, height: 900 }, false],
  ]) {
    const context = await browser.newContext({ viewport, isMobile, hasTouch: isMobile, deviceScaleFactor: 1, colorScheme: values.scheme });
    const page = await context.newPage();
    page.on('pageerror', (e) => {
      failures++;
      console.error(`[${label}] page error: ${e.message}`);
    });
    page.on('console', (m) => m.type() === 'error' && console.error(`[${label}] console: ${m.text()}`));
    await page.goto(values.url + '/');
    await page.waitForSelector('#token, .topbar', { timeout: 10_000 });
    if (await page.$('#token')) {
      await page.screenshot({ path: join(values.out, `${label}-login.png`) });
      await audit(page, `${label} login`);
      await page.fill('#token', token);
      await page.click('button[type=submit]');
      await page.waitForSelector('.topbar', { timeout: 10_000 });
    }
    for (const entry of values.paths.split(',')) {
      const [p, click] = entry.split('@');
      await page.goto('about:blank');
      await page.goto(values.url + '/' + p);
      await page.waitForTimeout(1500);
      if (click) {
        await page.click(click);
        await page.waitForTimeout(700);
      }
      const name = `${label}-${entry.replace(/[^a-z0-9]+/gi, '_').replace(/^_+|_+$/g, '') || 'dashboard'}`;
      await page.screenshot({ path: join(values.out, `${name}.png`) });
      await audit(page, `${label} ${p}`);
    }
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(failures ? `check: ${failures} problem(s)` : 'check: no serious accessibility violations, no page errors');
process.exit(failures ? 1 : 0);

async function audit(page, where) {
  // Through the DevTools protocol: the page's CSP (no inline scripts) does not apply.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  for (const v of result) {
    const serious = v.impact === 'serious' || v.impact === 'critical';
    if (serious) failures++;
    console.log(`[${where}] ${serious ? 'FAIL' : 'note'} ${v.impact} ${v.id}: ${v.help} — ${v.nodes.join(' | ')}`);
  }
}
