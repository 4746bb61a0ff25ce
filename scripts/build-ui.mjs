#!/usr/bin/env node
/**
 * Builds the web UI (ui/) into dist/ui: index.html, app.js (+ lazily loaded chunks/), app.css, sw.js.
 * Type-checks ui/ first (its own tsconfig: DOM libs, Preact's JSX), so a type error fails the build.
 *   node scripts/build-ui.mjs [--no-check] [--dev]
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ui = join(root, 'ui');
const out = join(root, 'dist', 'ui');
const args = new Set(process.argv.slice(2));
const dev = args.has('--dev');

if (!args.has('--no-check')) {
  try {
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ui, 'tsconfig.json'), '--noEmit'], { stdio: 'inherit' });
  } catch {
    console.error('build-ui: the type-check of ui/ failed.');
    process.exit(1);
  }
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: { app: join(ui, 'src', 'main.tsx') },
  outdir: out,
  entryNames: '[name]',
  chunkNames: 'chunks/[name]-[hash]',
  assetNames: 'assets/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  target: ['es2022', 'chrome100', 'safari15.4', 'firefox100'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: !dev,
  sourcemap: dev ? 'inline' : false,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': dev ? '"development"' : '"production"' },
});

copyFileSync(join(ui, 'index.html'), join(out, 'index.html'));
copyFileSync(join(ui, 'sw.js'), join(out, 'sw.js'));
copyFileSync(join(ui, 'icon.svg'), join(out, 'icon.svg'));
writeFileSync(join(out, 'manifest.webmanifest'), readFileSync(join(ui, 'manifest.webmanifest')));

// What a first visit downloads: app.js and the chunks it imports statically (not the lazy ones).
const outputs = result.metafile.outputs;
const key = (p) => relative(root, p).split('\\').join('/');
const initial = new Set();
const visit = (file) => {
  if (initial.has(file)) return;
  initial.add(file);
  for (const imp of outputs[file]?.imports ?? []) if (imp.kind === 'import-statement') visit(imp.path);
};
visit(key(join(out, 'app.js')));
let raw = 0;
let gz = 0;
for (const f of initial) {
  const data = readFileSync(join(root, f));
  raw += data.length;
  gz += gzipSync(data, { level: 9 }).length;
}
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const files = [];
const walk = (d) => {
  for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(join(d, e.name)) : files.push(join(d, e.name));
};
walk(out);
for (const f of files.sort()) {
  const data = readFileSync(f);
  console.log(`  ${relative(root, f).padEnd(44)} ${kb(statSync(f).size).padStart(10)}  gzip ${kb(gzipSync(data, { level: 9 }).length).padStart(9)}`);
}
console.log(`build-ui: initial JS ${kb(raw)} (gzip ${kb(gz)}) in ${initial.size} file(s)`);
const LIMIT = 200 * 1024;
if (gz > LIMIT) {
  console.error(`build-ui: the initial JS is over the budget of ${kb(LIMIT)} gzipped.`);
  process.exit(1);
}
