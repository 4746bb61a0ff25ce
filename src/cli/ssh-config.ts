/**
 * @module The claude-vm block in ~/.ssh/config: written between markers, replaced in place on later runs, and
 * removable so that the file is byte-for-byte what it was. Always written to a temporary file and renamed, so
 * the user's config is never left half-written.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const START = '# ------------START-CLAUDE-VM------------';
const END = '# ------------END-CLAUDE-VM------------';
/** Appended to the start marker when a newline had to be added before the block (so removal can take it back). */
const ADDED_NEWLINE = ' (newline added)';

export interface SshHostEntry {
  /** Host patterns: the id's host name and the name's, e.g. bold-fire-1234.claude-vm shop.claude-vm */
  hosts: string[];
  user: string;
  proxyCommand: string;
  identityFile: string;
  knownHostsFile: string;
  projectDir: string;
}

export function renderEntries(entries: SshHostEntry[]): string {
  return entries
    .map((e) =>
      [
        `Host ${e.hosts.join(' ')}`,
        `  HostName ${e.hosts[0]}`,
        `  User ${e.user}`,
        `  ProxyCommand ${e.proxyCommand}`,
        `  IdentityFile ${quote(e.identityFile)}`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${quote(e.knownHostsFile)}`,
        '  StrictHostKeyChecking yes',
        // AES-GCM first: with AES instructions (nearly every laptop) it moves files about twice as fast as ChaCha20.
        '  Ciphers aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com',
        `  SetEnv CLAUDE_VM_PROJECT_DIR=${e.projectDir}`,
        `  # project directory: ${e.projectDir}`,
      ].join('\n'),
    )
    .join('\n\n');
}

/** The file with our block put in (replacing an earlier one in place), or appended at the end. */
export function withBlock(text: string, body: string): string {
  const existing = findBlock(text);
  if (existing) {
    const marker = text.slice(existing.start, text.indexOf('\n', existing.start));
    return text.slice(0, existing.start) + block(body, marker.endsWith(ADDED_NEWLINE)) + text.slice(existing.end);
  }
  const needsNewline = text.length > 0 && !text.endsWith('\n');
  return text + (needsNewline ? '\n' : '') + block(body, needsNewline);
}

/** The file without our block: exactly as it was before the first `withBlock`. */
export function withoutBlock(text: string): string {
  const existing = findBlock(text);
  if (!existing) return text;
  const marker = text.slice(existing.start, text.indexOf('\n', existing.start));
  // The newline we added goes only if the block is still last: text appended after it keeps its line break.
  const start = marker.endsWith(ADDED_NEWLINE) && existing.end === text.length && text[existing.start - 1] === '\n' ? existing.start - 1 : existing.start;
  return text.slice(0, start) + text.slice(existing.end);
}

function block(body: string, addedNewline: boolean): string {
  return `${START}${addedNewline ? ADDED_NEWLINE : ''}\n# Written by \`claude-vm config-ssh\`; \`claude-vm config-ssh --remove\` takes it out. Edits in here are overwritten.\n${body ? body + '\n' : ''}${END}\n`;
}

function findBlock(text: string): { start: number; end: number } | undefined {
  const at = text.startsWith(START) ? 0 : text.indexOf(`\n${START}`);
  if (at < 0) return undefined;
  const start = at === 0 && text.startsWith(START) ? 0 : at + 1;
  const endAt = text.indexOf(`${END}\n`, start);
  if (endAt < 0) {
    const bare = text.indexOf(END, start);
    if (bare < 0 || bare + END.length !== text.length) throw new Error('the claude-vm block in the SSH config has no end marker; fix or remove it by hand');
    return { start, end: text.length };
  }
  return { start, end: endAt + END.length + 1 };
}

/** Writes through a temporary file and a rename, keeping the file's mode (0600 for a new one). */
export function writeAtomically(path: string, text: string): void {
  // Through a symlink (a config kept in a dotfiles repository): replace the file it points to, not the link.
  const file = existsSync(path) ? realpathSync(path) : path;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const mode = existsSync(file) ? statSync(file).mode & 0o777 : 0o600;
  const tmp = `${file}.claude-vm-${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}

export function readOrEmpty(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

function quote(path: string): string {
  return /\s/.test(path) ? `"${path}"` : path;
}
