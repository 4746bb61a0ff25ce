#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (run `npm run build` after changing src/).
import('../dist/src/cli/main.js').then((m) => m.main(process.argv.slice(2)));
