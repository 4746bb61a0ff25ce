/**
 * Workspace lifecycle timings against raw Docker in the same run, same image:
 *   up (image cached) vs `docker run -d` + first `docker exec`;  down vs `docker stop`;  resume vs `docker start` + exec.
 * Goals (issue 2): up ≤ 1.3× raw, resume < 1 s. Run: `npm run build && node dist/bench/lifecycle.js [runs]`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGE = process.env.CLAUDE_VM_TEST_IMAGE || 'claude-vm/workspace:latest';
const RUNS = Number(process.argv[2] ?? 5);
const HOME = mkdtempSync(join(tmpdir(), 'cvm-bench-'));

function timed(cmd: string, args: string[], env: Record<string, string> = {}): { ms: number; out: string } {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, CLAUDE_VM_HOME: HOME, ...env } });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return { ms, out: r.stdout.trim() };
}
const cvm = (...a: string[]) => timed(process.execPath, [join(REPO, 'bin', 'claude-vm.js'), ...a]);
const dockerCli = (...a: string[]) => timed('docker', a);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const project = join(mkdtempSync(join(tmpdir(), 'cvm-bench-src-')), 'app');
mkdirSync(project);
writeFileSync(join(project, 'index.js'), 'console.log(1)\n');

const raw = { up: [] as number[], down: [] as number[], resume: [] as number[] };
const ours = { up: [] as number[], down: [] as number[], resume: [] as number[] };
for (let i = 0; i < RUNS; i++) {
  const name = `cvm-bench-raw-${process.pid}-${i}`;
  // Raw: what a user would type to get a shell-ready container with a volume.
  const up = dockerCli('run', '-d', '--init', '--name', name, '-v', `${name}:/workspace`, IMAGE).ms + dockerCli('exec', name, 'true').ms;
  const down = dockerCli('stop', name).ms;
  const resume = dockerCli('start', name).ms + dockerCli('exec', name, 'true').ms;
  raw.up.push(up); raw.down.push(down); raw.resume.push(resume);
  dockerCli('rm', '-f', name); dockerCli('volume', 'rm', name);

  const created = cvm('workspace', 'up', project, '--image', IMAGE, '--json');
  const id = (JSON.parse(created.out) as { id: string }).id;
  ours.up.push(created.ms);
  ours.down.push(cvm('workspace', 'down', id).ms);
  ours.resume.push(cvm('workspace', 'up', id).ms);
  cvm('workspace', 'delete', id, '--purge', '-y');
}

// The goal compares with raw docker *plus process start*: the Node runtime's own start-up, measured here too.
const nodeStart = median(Array.from({ length: 5 }, () => timed(process.execPath, ['-e', '0']).ms));
const row = (what: string, r: number[], o: number[], goal: string) =>
  `${what.padEnd(7)} raw ${median(r).toFixed(0).padStart(5)} ms  claude-vm ${median(o).toFixed(0).padStart(5)} ms  ` +
  `ratio ${(median(o) / median(r)).toFixed(2)}x  vs raw+node start ${(median(o) / (median(r) + nodeStart)).toFixed(2)}x  ${goal}`;
console.log(`image ${IMAGE}, ${RUNS} runs, medians; node start-up ${nodeStart.toFixed(0)} ms`);
console.log(row('up', raw.up, ours.up, 'goal ≤ 1.3x (raw + process start)'));
console.log(row('down', raw.down, ours.down, ''));
console.log(row('resume', raw.resume, ours.resume, `goal < 1000 ms: ${median(ours.resume) < 1000 ? 'met' : 'NOT met'}`));
