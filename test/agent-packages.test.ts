/** The versions `agent install` puts into other images are the ones the workspace image pins. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './support/cli.js';
import { AGENT_PACKAGES } from '../src/core/agent-packages.js';

test('agent-packages.ts and image/Dockerfile pin the same agent versions', () => {
  const dockerfile = readFileSync(join(REPO, 'image', 'Dockerfile'), 'utf8');
  for (const [agent, p] of Object.entries(AGENT_PACKAGES)) {
    const m = dockerfile.match(new RegExp(`^ARG ${p.dockerArg}=(\\S+)$`, 'm'));
    assert.equal(m?.[1], p.version, `${agent}: Dockerfile ${p.dockerArg}`);
    assert.match(dockerfile, new RegExp(`"${p.pkg.replace('/', '\\/')}@\\$\\{${p.dockerArg}\\}"`), `${agent}: Dockerfile installs ${p.pkg}`);
  }
});
