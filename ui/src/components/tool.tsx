/** How tool calls read: a one-line summary (the command, the file), and the full input (a command, or a diff). */
import type { VNode } from 'preact';

type Input = Record<string, unknown>;

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return (v as string[]).join(' ');
  return undefined;
}

function asInput(input: unknown): Input {
  return input && typeof input === 'object' && !Array.isArray(input) ? (input as Input) : {};
}

function oneLine(s: string, max = 160): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? t.slice(0, max - 1) + '…' : t;
}

export function filePath(input: unknown): string | undefined {
  const i = asInput(input);
  return str(i.file_path) ?? str(i.filePath) ?? str(i.absolute_path) ?? str(i.path) ?? str(i.notebook_path);
}

/** "npm test", "src/app.ts", "pattern in dir": what a person needs to recognise the call. */
export function toolSummary(name: string, input: unknown): string {
  const i = asInput(input);
  const cmd = str(i.command) ?? str(i.cmd);
  if (cmd) return oneLine(cmd);
  const path = filePath(input);
  if (path) return path;
  if (typeof i.pattern === 'string') return oneLine(`${i.pattern}${typeof i.path === 'string' ? ` in ${i.path}` : ''}`);
  if (typeof i.url === 'string') return i.url;
  if (typeof i.query === 'string') return oneLine(i.query);
  if (typeof i.description === 'string') return oneLine(i.description);
  if (Array.isArray(i.todos)) return `${i.todos.length} to-do item(s)`;
  if (Array.isArray(i.changes)) return oneLine((i.changes as Input[]).map((c) => `${str(c.kind) ?? ''} ${str(c.path) ?? ''}`.trim()).join(', '));
  if (typeof input === 'string') return oneLine(input);
  const json = JSON.stringify(input);
  return json && json !== '{}' ? oneLine(json) : name;
}

export interface DiffLine {
  kind: 'add' | 'del' | 'ctx' | 'hunk' | 'meta';
  text: string;
}

/** A diff-like view of an edit: the old text as removed lines, the new as added ones. */
function editLines(oldText: string, newText: string): DiffLine[] {
  const out: DiffLine[] = [];
  const a = oldText ? oldText.replace(/\n$/, '').split('\n') : [];
  const b = newText ? newText.replace(/\n$/, '').split('\n') : [];
  // Trim the common head and tail so a small change in a big block reads as one.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  for (const l of a.slice(Math.max(0, head - 2), head)) out.push({ kind: 'ctx', text: ' ' + l });
  for (const l of a.slice(head, a.length - tail)) out.push({ kind: 'del', text: '-' + l });
  for (const l of b.slice(head, b.length - tail)) out.push({ kind: 'add', text: '+' + l });
  for (const l of a.slice(a.length - tail, a.length - tail + 2)) out.push({ kind: 'ctx', text: ' ' + l });
  return out;
}

export function DiffBlock(props: { lines: DiffLine[]; label?: string; max?: number }) {
  const lines = props.max && props.lines.length > props.max ? props.lines.slice(0, props.max) : props.lines;
  return (
    <pre class="diff" tabIndex={0} {...(props.label ? { role: 'region', 'aria-label': props.label } : {})}>
      {lines.map((l, i) => (
        <span key={i} class={`dl ${l.kind}`}>
          {l.text}
          {'\n'}
        </span>
      ))}
      {lines.length < props.lines.length && <span class="dl meta">… {props.lines.length - lines.length} more lines</span>}
    </pre>
  );
}

/** The tool's input in full: a shell command, a diff for edits and writes, or the JSON. */
export function ToolInput(props: { name: string; input: unknown; max?: number }): VNode {
  const i = asInput(props.input);
  const cmd = str(i.command) ?? str(i.cmd);
  const path = filePath(props.input);
  const oldS = str(i.old_string) ?? str(i.oldString);
  const newS = str(i.new_string) ?? str(i.newString);
  if (oldS !== undefined || newS !== undefined) {
    return (
      <div class="tool-input">
        {path && <div class="tool-path">{path}</div>}
        <DiffBlock lines={editLines(oldS ?? '', newS ?? '')} label={`Edit of ${path ?? 'a file'}`} max={props.max} />
      </div>
    );
  }
  if (Array.isArray(i.edits)) {
    return (
      <div class="tool-input">
        {path && <div class="tool-path">{path}</div>}
        {(i.edits as Input[]).map((e, n) => (
          <DiffBlock key={n} lines={editLines(String(e.old_string ?? ''), String(e.new_string ?? ''))} max={props.max} />
        ))}
      </div>
    );
  }
  if (typeof i.content === 'string' && path) {
    return (
      <div class="tool-input">
        <div class="tool-path">{path} (new content)</div>
        <DiffBlock lines={i.content.replace(/\n$/, '').split('\n').map((l) => ({ kind: 'add' as const, text: '+' + l }))} label={`Write of ${path}`} max={props.max} />
      </div>
    );
  }
  if (cmd) {
    return (
      <pre class="code cmd" tabIndex={0}>
        <span aria-hidden="true">$ </span>
        {cmd}
      </pre>
    );
  }
  return <pre class="code" tabIndex={0}>{typeof props.input === 'string' ? props.input : JSON.stringify(props.input, null, 2)}</pre>;
}

/** A unified diff's text as lines (the Changes tab). */
export function diffLines(text: string): DiffLine[] {
  return text.split('\n').map((l) => ({
    kind: l.startsWith('@@') ? 'hunk' : l.startsWith('+++') || l.startsWith('---') || l.startsWith('diff ') || l.startsWith('index ') ? 'meta' : l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : 'ctx',
    text: l,
  }));
}
