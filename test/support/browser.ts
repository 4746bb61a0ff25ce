/**
 * @module A browser for UI tests: Debian's Chromium driven by playwright-core (never a downloaded browser), one
 * context per screen size, screenshots saved as test artifacts, page errors collected, and axe-core run on the
 * page as it stands.
 *
 * Screenshots go to $CLAUDE_VM_TEST_ARTIFACTS (default: test-artifacts/ in the repository), one subdirectory per
 * test file; nothing there belongs in git.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { REPO } from './cli.js';

export const CHROMIUM = process.env.CLAUDE_VM_TEST_CHROMIUM || '/usr/bin/chromium';

export interface ScreenSize {
  name: 'phone' | 'desktop';
  width: number;
  height: number;
  mobile: boolean;
}

export const PHONE: ScreenSize = { name: 'phone', width: 390, height: 844, mobile: true };
export const DESKTOP: ScreenSize = { name: 'desktop', width: 1440, height: 900, mobile: false };

/** Where this run's artifacts go (created): $CLAUDE_VM_TEST_ARTIFACTS/<sub>, default <repo>/test-artifacts/<sub>. */
export function artifactsDir(sub: string): string {
  const dir = join(process.env.CLAUDE_VM_TEST_ARTIFACTS || join(REPO, 'test-artifacts'), sub);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

export interface AxeViolation {
  step: string;
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** One screen size's browser context and page, with what went wrong on it. */
export class BrowserSession {
  /** Uncaught exceptions in the page: each is a failure. */
  readonly pageErrors: string[] = [];
  /** console.error lines, kept for the failure message (a refused request logs one, which can be expected). */
  readonly consoleErrors: string[] = [];
  /** Every axe violation seen, of any impact. */
  readonly violations: AxeViolation[] = [];
  private step = 0;

  private constructor(
    readonly size: ScreenSize,
    readonly context: BrowserContext,
    readonly page: Page,
    readonly dir: string,
  ) {
    page.on('pageerror', (e) => this.pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') this.consoleErrors.push(m.text());
    });
  }

  static async open(browser: Browser, size: ScreenSize, dir: string): Promise<BrowserSession> {
    const context = await browser.newContext({
      viewport: { width: size.width, height: size.height },
      isMobile: size.mobile,
      hasTouch: size.mobile,
      deviceScaleFactor: 1,
      colorScheme: 'light',
    });
    context.setDefaultTimeout(30_000);
    return new BrowserSession(size, context, await context.newPage(), dir);
  }

  /** Saves <dir>/<size>-<nn>-<name>.png and returns its path. */
  async shot(name: string): Promise<string> {
    const path = join(this.dir, `${this.size.name}-${String(++this.step).padStart(2, '0')}-${name}.png`);
    await this.page.screenshot({ path });
    return path;
  }

  /**
   * Runs axe-core (the axe-core package's axe.min.js) on the page as it is now and records the violations. The
   * app's CSP (default-src 'self') refuses inline scripts, so page.addScriptTag would be blocked (and the context
   * does not bypass the CSP: the app is tested as served); the source is evaluated through the DevTools protocol.
   */
  async axe(step: string): Promise<AxeViolation[]> {
    if (!(await this.page.evaluate(() => typeof (globalThis as { axe?: unknown }).axe === 'object'))) await this.page.evaluate(AXE_SOURCE);
    const found = await this.page.evaluate(async () => {
      const axe = (globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[] }> }> }> } }).axe;
      const r = await axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.map(String).join(' ')) }));
    });
    const list = found.map((v) => ({ step, ...v }));
    this.violations.push(...list);
    return list;
  }

  /** The violations axe rates serious or critical, one line each. */
  serious(): string[] {
    return this.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `[${this.size.name} ${v.step}] ${v.impact} ${v.id}: ${v.help} — ${v.nodes.join(' | ')}`);
  }

  /** Writes <dir>/<size>-axe.json (every violation, any impact) and <size>-console.txt. */
  saveReport(): void {
    writeFileSync(join(this.dir, `${this.size.name}-axe.json`), JSON.stringify(this.violations, null, 2) + '\n');
    writeFileSync(join(this.dir, `${this.size.name}-console.txt`), [...this.pageErrors.map((e) => `pageerror: ${e}`), ...this.consoleErrors.map((e) => `console.error: ${e}`)].join('\n') + '\n');
  }

  async close(): Promise<void> {
    await this.context.close().catch(() => undefined);
  }
}

/** Waits until `check` holds (polling), then returns its last value; the message says what never happened. */
export async function until<T>(what: string, check: () => Promise<T | false | undefined | null>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The text of a locator once it matches `re` (the locator's first match, polled). */
export function textMatching(what: string, locator: Locator, re: RegExp, timeoutMs = 60_000): Promise<string> {
  return until(what, async () => {
    const t = await locator.first().innerText({ timeout: 1000 });
    return re.test(t) ? t : false;
  }, timeoutMs);
}
