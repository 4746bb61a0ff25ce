/** The claude-vm block in ~/.ssh/config: put in, replaced in place, taken out byte-for-byte, written atomically. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, lstatSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderEntries, withBlock, withoutBlock, writeAtomically } from '../src/cli/ssh-config.js';

const START = '# ------------START-CLAUDE-VM------------';
const END = '# ------------END-CLAUDE-VM------------';

const BODY = renderEntries([
  {
    hosts: ['bold-fire-1234.claude-vm', 'shop.claude-vm'],
    user: 'dev',
    proxyCommand: '/usr/bin/node /opt/claude-vm/bin/claude-vm.js ssh --stdio bold-fire-1234',
    identityFile: '/home/me/.claude-vm/ssh/id_ed25519',
    knownHostsFile: '/home/me/.claude-vm/ssh/known_hosts',
    projectDir: '/workspace/shop',
  },
]);
const OTHER_BODY = renderEntries([
  {
    hosts: ['calm-lake-0001.claude-vm'],
    user: 'dev',
    proxyCommand: 'node claude-vm.js ssh --stdio calm-lake-0001',
    identityFile: '/home/me/my keys/id',
    knownHostsFile: '/home/me/.claude-vm/ssh/known_hosts',
    projectDir: '/workspace/api',
  },
]);

const count = (text: string, needle: string) => text.split(needle).length - 1;

test('renderEntries: one Host stanza per workspace with the id and name hosts, our key, our known_hosts, strict checking', () => {
  assert.match(BODY, /^Host bold-fire-1234\.claude-vm shop\.claude-vm\n/);
  assert.match(BODY, /\n {2}HostName bold-fire-1234\.claude-vm\n/);
  assert.match(BODY, /\n {2}User dev\n/);
  assert.match(BODY, /\n {2}ProxyCommand \/usr\/bin\/node \/opt\/claude-vm\/bin\/claude-vm\.js ssh --stdio bold-fire-1234\n/);
  assert.match(BODY, /\n {2}IdentityFile \/home\/me\/\.claude-vm\/ssh\/id_ed25519\n/);
  assert.match(BODY, /\n {2}UserKnownHostsFile \/home\/me\/\.claude-vm\/ssh\/known_hosts\n/);
  assert.match(BODY, /\n {2}StrictHostKeyChecking yes\n/);
  assert.match(BODY, /\n {2}SetEnv CLAUDE_VM_PROJECT_DIR=\/workspace\/shop\n/);
  // A path with a space is quoted, or ssh would read two words.
  assert.match(OTHER_BODY, /\n {2}IdentityFile "\/home\/me\/my keys\/id"\n/);
});

test('withBlock on an empty file writes just the block; withoutBlock gives the empty file back', () => {
  const text = withBlock('', BODY);
  assert.ok(text.startsWith(`${START}\n`), text);
  assert.ok(text.endsWith(`${END}\n`), text);
  assert.ok(text.includes(`\n${BODY}\n`));
  assert.equal(count(text, START), 1);
  assert.equal(withoutBlock(text), '');
});

test('withBlock with an empty body still writes the markers (no workspaces yet), and removes cleanly', () => {
  const text = withBlock('Host a\n', '');
  assert.ok(text.startsWith('Host a\n'));
  assert.equal(count(text, START), 1);
  assert.equal(count(text, END), 1);
  assert.equal(withoutBlock(text), 'Host a\n');
});

test('a file that ends with a newline keeps everything before the block, and remove restores it exactly', () => {
  const original = 'Host other\n  HostName example.com\n  User me\n';
  const text = withBlock(original, BODY);
  assert.ok(text.startsWith(original));
  assert.ok(!text.includes('(newline added)'), 'no newline had to be added');
  assert.equal(withoutBlock(text), original);
});

test('a file that ends without a newline: the block starts on its own line, and remove restores the file byte-for-byte', () => {
  const original = 'Host other\n  HostName example.com\n  User me';
  const text = withBlock(original, BODY);
  assert.ok(text.startsWith(`${original}\n${START}`), 'the last user line is not glued to the marker');
  // ssh must still read the user's last line as its own: nothing of ours on it.
  assert.ok(text.split('\n').includes('  User me'));
  const removed = withoutBlock(text);
  assert.equal(removed, original);
  assert.equal(Buffer.compare(Buffer.from(removed), Buffer.from(original)), 0);
  // And again after a replacement: the note that a newline was added survives the rewrite.
  assert.equal(withoutBlock(withBlock(text, OTHER_BODY)), original);
});

test('a block in the middle of the file is replaced in place; the text around it is untouched', () => {
  const before = '# my config\nHost a\n  User x\n\n';
  const after = '\nHost b\n  User y\n# the end, no newline';
  const text = before + withBlock('', BODY) + after;
  const replaced = withBlock(text, OTHER_BODY);
  assert.ok(replaced.startsWith(before), replaced);
  assert.ok(replaced.endsWith(after), replaced);
  assert.equal(count(replaced, START), 1);
  assert.equal(count(replaced, END), 1);
  assert.ok(replaced.includes('Host calm-lake-0001.claude-vm'));
  assert.ok(!replaced.includes('bold-fire-1234'), 'the old entries are gone');
  assert.equal(replaced.slice(before.length, replaced.length - after.length), withBlock('', OTHER_BODY));
  assert.equal(withoutBlock(replaced), before + after);
});

test('withBlock twice gives the same text (idempotent), with and without a trailing newline in the user part', () => {
  for (const original of ['', 'Host a\n  User x\n', 'Host a\n  User x', '\n\n']) {
    const once = withBlock(original, BODY);
    assert.equal(withBlock(once, BODY), once, JSON.stringify(original));
    assert.equal(withBlock(withBlock(once, OTHER_BODY), BODY), once, 'replacing and replacing back is the same text');
    assert.equal(withoutBlock(withBlock(once, BODY)), original);
  }
});

test('withoutBlock on a file without a block returns it unchanged', () => {
  for (const original of ['', 'Host a\n  User x\n', 'Host a\n  User x', `# a comment mentioning START-CLAUDE-VM\nHost a\n`]) {
    assert.equal(withoutBlock(original), original);
  }
});

test('text the user appended after the block survives remove on its own line (file had no final newline)', () => {
  // `config-ssh` on a file without a final newline, then the user appends a host (e.g. `cat >> ~/.ssh/config`).
  const original = 'Host a\n  User x';
  const text = withBlock(original, BODY) + 'Host later\n  User y\n';
  const removed = withoutBlock(text);
  assert.ok(removed.split('\n').includes('  User x'), `the user's last line must not be glued to the next one: ${JSON.stringify(removed)}`);
  assert.equal(removed, 'Host a\n  User x\nHost later\n  User y\n');
});

test('a block without its end marker is refused, not guessed at', () => {
  const broken = `Host a\n${START}\nHost x\n  User dev\nHost b\n`;
  assert.throws(() => withBlock(broken, BODY), /no end marker/);
  assert.throws(() => withoutBlock(broken), /no end marker/);
});

test('writeAtomically keeps an existing file mode, creates new files 0600, and leaves no temporary file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cvm-sshcfg-'));
  const existing = join(dir, 'config');
  writeFileSync(existing, 'Host a\n');
  chmodSync(existing, 0o644);
  writeAtomically(existing, 'Host b\n');
  assert.equal(readFileSync(existing, 'utf8'), 'Host b\n');
  assert.equal(statSync(existing).mode & 0o777, 0o644);

  chmodSync(existing, 0o600);
  writeAtomically(existing, 'Host c\n');
  assert.equal(statSync(existing).mode & 0o777, 0o600);

  const fresh = join(dir, 'nested', '.ssh', 'config');
  writeAtomically(fresh, 'Host d\n');
  assert.equal(readFileSync(fresh, 'utf8'), 'Host d\n');
  assert.equal(statSync(fresh).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'nested', '.ssh')).mode & 0o777, 0o700, 'a new ~/.ssh is private');

  assert.deepEqual(readdirSync(dir).sort(), ['config', 'nested']);
  assert.deepEqual(readdirSync(join(dir, 'nested', '.ssh')), ['config']);
});

test('writeAtomically through a symlinked config (dotfiles) writes the target and keeps the link', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cvm-sshcfg-'));
  const target = join(dir, 'dotfiles-ssh-config');
  const link = join(dir, 'config');
  writeFileSync(target, 'Host a\n');
  chmodSync(target, 0o644);
  symlinkSync(target, link);
  writeAtomically(link, 'Host a\nHost b\n');
  assert.equal(readFileSync(link, 'utf8'), 'Host a\nHost b\n');
  assert.ok(lstatSync(link).isSymbolicLink(), 'the ~/.ssh/config symlink was replaced by a regular file');
  assert.equal(readlinkSync(link), target);
  assert.equal(readFileSync(target, 'utf8'), 'Host a\nHost b\n', 'the file the link points at is the one updated');
});
