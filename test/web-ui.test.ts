/**
 * The web UI end to end, the way a person uses it: Playwright (Debian's Chromium) drives the built UI served by a
 * real control plane (its own process), which runs a Docker workspace where the real Claude Code talks to a
 * scripted model. The browser logs in through `claude-vm web --no-open`'s one-time link, launches the workspace
 * from the launch form, chats (tool calls and the answer appear live; a message sent during a held turn shows as
 * queued, then is answered), reads the diff of what the agent changed, runs `git log --oneline` in the
 * terminal, and approves a risky command the agent asks to run from the banner that shows on every page (on the
 * desktop with "Always allow", after which the same command runs without asking). Everything runs at phone size (390×844) and desktop size (1440×900); each step is screenshotted (see
 * test/support/browser.ts for where) and checked with axe-core, which must find nothing serious or critical.
 *
 * Locators are by role and accessible name (or label) wherever the UI offers one: a control the test cannot find
 * that way is one a screen reader cannot find either.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { Cli, IMAGE, makeGitRepo } from './support/cli.js';
import { ScriptedAnthropic } from './support/scripted-anthropic.js';
import { freePort, killHard, startServerProcess, type ServerProcess } from './support/cp-process.js';
import { BrowserSession, DESKTOP, PHONE, artifactsDir, launchChromium, textMatching, type ScreenSize } from './support/browser.js';
import type { WorkspaceInfo } from '../src/protocol/types.js';

/** The launch form has no image field: a workspace launched from the UI gets the default image. */
const DEFAULT_IMAGE = 'claude-vm/workspace:latest';
const LONG = 180_000; // launching a workspace, a model turn through a real agent

let model: ScriptedAnthropic;
let server: ServerProcess;
let admin: Cli;
let browser: Browser;
const shots = artifactsDir('web-ui');

before(async () => {
  model = await ScriptedAnthropic.start();
  const home = mkdtempSync(join(tmpdir(), 'cvm-webui-'));
  server = await startServerProcess(home, { port: await freePort() });
  admin = new Cli({ CLAUDE_VM_URL: server.url, CLAUDE_VM_TOKEN: server.adminToken });
  // Host networking: the container reaches the scripted model (and the control plane) on the host's loopback.
  await admin.ok(['provider', 'add', 'hostnet', '--type', 'docker', '--option', 'network=host']);
  await admin.ok(['agent', 'set', 'claude', '--base-url', model.url, '--secret', 'ANTHROPIC_API_KEY=sk-test']);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close().catch(() => undefined);
  if (server) await killHard(server);
  await model?.close();
});

/** Deletes (with --purge) every workspace this control plane has: each test owns all of them while it runs. */
async function deleteAllWorkspaces(): Promise<void> {
  const list = await admin.json<WorkspaceInfo[]>(['workspace', 'list']).catch(() => [] as WorkspaceInfo[]);
  for (const w of list) await admin.run(['workspace', 'delete', w.id, '--purge', '-y']);
}

/** A workspace tab (Chat, Changes, Files, Terminal). A phone shows an open conversation full screen, tabs hidden:
 * its own "Back to conversations" link is the way out. */
async function openTab(page: Page, name: string): Promise<void> {
  const tabs = page.getByRole('navigation', { name: 'Workspace sections' });
  if (!(await tabs.isVisible())) await page.getByRole('link', { name: 'Back to conversations' }).click();
  await tabs.getByRole('link', { name, exact: true }).click();
  await tabs.getByRole('link', { name, exact: true }).and(page.locator('[aria-current="page"]')).waitFor();
}

for (const size of [PHONE, DESKTOP] satisfies ScreenSize[]) {
  test(`web UI at ${size.name} size (${size.width}×${size.height}): launch, chat with a queued message, diff, terminal, approve a risky command`, { timeout: 15 * 60_000 }, async (t) => {
    if (IMAGE !== DEFAULT_IMAGE) return t.skip(`the launch form cannot choose an image; CLAUDE_VM_TEST_IMAGE=${IMAGE} is not ${DEFAULT_IMAGE}`);
    const ui = await BrowserSession.open(browser, size, shots);
    const { page } = ui;
    const wsName = `web-${size.name}`;
    const repo = makeGitRepo(`webapp-${size.name}`);
    let release: () => void = () => undefined;
    try {
      // --- Log in: the one-time link `claude-vm web --no-open` prints, opened in the browser.
      const link = (await admin.ok(['web', '--no-open'])).stdout.trim();
      assert.match(link, new RegExp(`^${server.url}/login\\?code=`));
      await page.goto(link);
      await page.getByRole('heading', { level: 1, name: 'Workspaces' }).waitFor();
      await page.getByRole('heading', { name: 'No workspaces yet' }).waitFor();
      assert.equal((await fetch(link, { redirect: 'manual' })).status, 401, 'the login link works once');
      await ui.shot('dashboard-empty');
      await ui.axe('dashboard (empty)');

      // --- Launch from the form. It has no image field (the default image is used) and no way to pass
      // provider options, so the provider added above is chosen by name.
      await page.getByRole('button', { name: 'Launch', exact: true }).click();
      const dialog = page.getByRole('dialog', { name: 'Launch a workspace' });
      await dialog.waitFor();
      await dialog.getByLabel('Path or git URL').fill(repo);
      await dialog.getByLabel('Name').fill(wsName);
      await dialog.getByLabel('Provider').selectOption('hostnet');
      assert.equal(await dialog.getByLabel('Agent').inputValue(), 'claude');
      await ui.shot('launch-form');
      await ui.axe('launch form');
      await dialog.getByRole('button', { name: 'Launch', exact: true }).click();
      await dialog.getByRole('list', { name: 'Launch progress' }).waitFor();
      await ui.shot('launch-progress');

      // The form closes and the new workspace opens, with the New chat form already out.
      await page.getByRole('heading', { level: 1, name: wsName }).waitFor({ timeout: LONG });
      const id = /#\/w\/([^/?]+)/.exec(page.url())?.[1];
      assert.ok(id, `the workspace's page: ${page.url()}`);
      const ws = await admin.json<WorkspaceInfo>(['workspace', 'show', id]);
      assert.equal(ws.status, 'running');
      assert.equal(ws.provider, 'hostnet');
      assert.equal(ws.name, wsName);

      // --- Chat. The model writes a file, then holds its next step (a Bash command) until the test lets go.
      const held = new Promise<void>((r) => (release = r));
      const requestsBefore = model.turnRequests.length;
      model.enqueue(
        { text: 'Writing hello.py first.', tools: [{ name: 'Write', input: { file_path: `${ws.projectDir}/hello.py`, content: 'print("hello from the agent")\n' } }] },
        { tools: [{ name: 'Bash', input: { command: "echo 'Edited by the agent.' >> README.md && git status --short" } }], hold: held },
        { text: 'Done: wrote hello.py and added a line to README.md.' },
        { text: 'Second answer: the queued message arrived.' },
      );
      await page.getByLabel('First message').fill('Write hello.py, then note it in the README.');
      await ui.shot('new-chat');
      await ui.axe('new chat form');
      await page.getByRole('button', { name: 'Start chat' }).click();
      await page.waitForURL(/#\/w\/[^/]+\/c\/c_[0-9a-f]+$/);
      const conv = /\/c\/(c_[0-9a-f]+)$/.exec(page.url())![1]!;

      // Live: the first text and the Write (with its content as added lines) arrive while the turn goes on.
      const log = page.getByRole('log', { name: 'Conversation events' });
      await log.waitFor({ timeout: LONG });
      await log.getByText('Write hello.py, then note it in the README.').waitFor({ timeout: LONG });
      await log.getByText('Writing hello.py first.').waitFor({ timeout: LONG });
      const write = log.getByRole('region', { name: /^Write of .*hello\.py$/ });
      await write.waitFor({ timeout: LONG });
      assert.match(await write.innerText(), /\+print\("hello from the agent"\)/);
      // The model now holds its second answer: the Write ran and its result went back to the model.
      await model.waitForRequests(requestsBefore + 2, LONG);
      await page.getByRole('status').filter({ hasText: 'The agent is working' }).waitFor({ timeout: LONG });
      await page.getByRole('button', { name: 'Interrupt the agent' }).waitFor();
      await ui.shot('chat-working');
      await ui.axe('chat, agent working');

      // A second message while the turn is held is queued, and shown as queued.
      const compose = page.getByLabel('Message to the agent');
      await compose.fill('And a second question?');
      await page.getByRole('button', { name: 'Queue message' }).click();
      const queue = page.getByRole('list', { name: 'Queued messages' });
      await queue.getByRole('listitem').filter({ hasText: 'And a second question?' }).waitFor();
      assert.equal(await compose.inputValue(), '', 'the compose box is cleared once the message is queued');
      await ui.shot('chat-queued');
      await ui.axe('chat, a message queued');

      // Let the turn finish: the Bash call, the answer, then the queued message becomes a turn of its own.
      release();
      await log.getByText('Done: wrote hello.py and added a line to README.md.').waitFor({ timeout: LONG });
      await log.getByText('Second answer: the queued message arrived.').waitFor({ timeout: LONG });
      await queue.waitFor({ state: 'detached', timeout: LONG });
      await page.getByRole('status').filter({ hasText: 'The agent is working' }).waitFor({ state: 'detached', timeout: LONG });
      // The queued text was sent as a user message (a bubble in the log, not a queue entry any more).
      await log.getByText('And a second question?').waitFor();
      await log.getByText('Turn completed').last().waitFor();
      assert.match(JSON.stringify(model.turnRequests.at(-1)!.body.messages), /And a second question\?/, 'the model got the queued message');
      await ui.shot('chat-answered');
      await ui.axe('chat, both turns answered');
      const info = await admin.json<Array<{ id: string; state: string; queue: unknown[] }>>(['conversations', '-w', id]);
      assert.deepEqual(info.map((c) => [c.id, c.state, c.queue.length]), [[conv, 'idle', 0]]);

      // --- The diff of what the agent changed: a new file and an edited tracked one.
      await openTab(page, 'Changes');
      await page.getByRole('heading', { name: /changed files?/ }).waitFor({ timeout: LONG });
      const newFile = page.getByRole('region', { name: 'Diff of hello.py' });
      const readme = page.getByRole('region', { name: 'Diff of README.md' });
      assert.match(await newFile.innerText(), /^\+print\("hello from the agent"\)$/m);
      assert.match(await readme.innerText(), /^\+Edited by the agent\.$/m);
      assert.match(await readme.innerText(), /^ # demo$/m, 'the edit is shown in context');
      await ui.shot('changes');
      await ui.axe('changes');

      // --- The terminal: xterm.js on the workspace's tmux session, in the project directory.
      await openTab(page, 'Terminal');
      const input = page.getByRole('textbox', { name: 'Terminal input' });
      await input.waitFor({ timeout: LONG });
      await page.getByRole('status').filter({ hasText: 'Connecting…' }).waitFor({ state: 'detached', timeout: LONG });
      // A phone gets a bar of the keys its keyboard lacks; a desktop (fine pointer, wide screen) does not.
      assert.equal(await page.getByRole('toolbar', { name: 'Extra keys' }).isVisible(), size.mobile);
      // The shell's prompt: the terminal is attached and drawing.
      // xterm.js draws its rows as plain DOM (no roles unless its screen-reader mode is on), so output is read there.
      const screen = page.locator('.xterm-rows');
      await textMatching('a shell prompt in the terminal', screen, /\S/, LONG);
      await input.focus();
      await page.keyboard.type('git log --oneline');
      await page.keyboard.press('Enter');
      // The one commit of the source repository ("init"), decorated as git does on a terminal: "4307e46 (HEAD -> main) init".
      const shown = await textMatching('`git log --oneline` output in the terminal', screen, /^[0-9a-f]{7,12} (\(HEAD -> main\) )?init\s*$/m, LONG);
      assert.match(shown.replace(/\n/g, ''), /git log --oneline/, 'the typed command is echoed (a phone-width line may wrap it)');
      await ui.shot('terminal');
      await ui.axe('terminal');

      // --- Approvals: a risky command (the gate asks before `git reset --hard`) waits for the user, who sees the
      // banner from any page, reads the full command on the Approvals page and approves it; the command then runs.
      model.enqueue({ tools: [{ name: 'Bash', input: { command: 'git reset --hard HEAD' } }] }, { text: 'Reset done: README.md is back as committed.' });
      await page.evaluate((h) => (location.hash = h), `#/w/${id}/c/${conv}`);
      await compose.waitFor();
      await compose.fill('Now throw away the README edit.');
      await page.getByRole('button', { name: 'Send message' }).click();
      const banner = page.getByRole('link', { name: /Approval needed/ });
      await banner.waitFor({ timeout: LONG });
      await ui.shot('approval-banner');
      await banner.click();
      await page.getByRole('heading', { level: 1, name: 'Approvals' }).waitFor();
      const approval = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: 'Bash' }) });
      await approval.getByText('git reset --hard HEAD').waitFor();
      assert.match(await approval.innerText(), /Why: this discards work that is not committed\. Refused automatically at/, 'the reason and the deadline are shown');
      await ui.shot('approvals-pending');
      await ui.axe('approvals (one pending)');
      // On the phone, approve this once; on the desktop, always allow this exact command.
      await approval.getByRole('button', { name: size.mobile ? 'Approve' : 'Always allow', exact: true }).click();
      await page.getByRole('heading', { name: 'Nothing is waiting for you' }).waitFor({ timeout: LONG });
      assert.equal(await banner.count(), 0, 'no banner once decided');
      await page.evaluate((h) => (location.hash = h), `#/w/${id}/c/${conv}`);
      await log.getByText('Reset done: README.md is back as committed.').waitFor({ timeout: LONG });
      assert.doesNotMatch((await admin.ok(['exec', id, '--', 'git', 'status', '--short'])).stdout, /README/, 'the approved command ran');
      await ui.shot('approval-done');
      if (!size.mobile) {
        // "Always allow" became a rule of the workspace's, so the same command later runs without asking.
        const rules = await admin.json<{ rules: Array<{ action: string; pattern: string }> }>(['workspace', 'rules', id]);
        assert.deepEqual(rules.rules.map((r) => [r.action, r.pattern]), [['allow', '/^git reset --hard HEAD$/']]);
        model.enqueue({ tools: [{ name: 'Bash', input: { command: 'git reset --hard HEAD' } }] }, { text: 'Reset again, without asking.' });
        await compose.fill('Reset once more.');
        await page.getByRole('button', { name: 'Send message' }).click();
        await log.getByText('Reset again, without asking.').waitFor({ timeout: LONG });
        const asked = (await admin.ok(['logs', conv, '--json'])).stdout.split('\n').filter((l) => l.includes('"approval.requested"'));
        assert.equal(asked.length, 1, 'asked once, then allowed by the rule');
      }

      // --- Back on the dashboard: the workspace's card.
      await page.getByRole('link', { name: 'claude-vm: workspaces' }).click();
      const card = page.getByRole('list', { name: 'Your workspaces' }).getByRole('listitem').filter({ has: page.getByRole('heading', { name: wsName }) });
      await card.waitFor();
      await card.getByRole('button', { name: `Stop ${wsName}` }).waitFor();
      await ui.shot('dashboard');
      await ui.axe('dashboard');

      assert.deepEqual(ui.pageErrors, [], 'no uncaught errors in the page');
      assert.deepEqual(ui.serious(), [], 'axe-core: no serious or critical violations');
    } catch (e) {
      await ui.shot('failure').catch(() => undefined);
      if (ui.consoleErrors.length) console.error(`[${size.name}] console errors:\n${ui.consoleErrors.join('\n')}`);
      throw e;
    } finally {
      release();
      ui.saveReport();
      await ui.close();
      await deleteAllWorkspaces();
    }
  });
}
