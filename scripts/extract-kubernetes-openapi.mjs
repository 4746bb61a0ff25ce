#!/usr/bin/env node
/**
 * Cuts the part of the published Kubernetes OpenAPI (v2) spec that the Kubernetes provider uses out of a full
 * swagger.json, for the test stand-in to check requests and answers against:
 *
 *   node scripts/extract-kubernetes-openapi.mjs swagger.json "Kubernetes 1.34.0 (…)" > test/fixtures/kubernetes-openapi.json
 *
 * The paths below, with every parameter and definition they reach. Descriptions are dropped (they are prose,
 * and most of the size); everything normative (types, formats, required, enums, parameters) is kept.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const [file, source] = process.argv.slice(2);
if (!file || !source) {
  console.error('usage: extract-kubernetes-openapi.mjs <swagger.json> <where it came from>');
  process.exit(2);
}
const text = readFileSync(file, 'utf8');
const spec = JSON.parse(text);
const PATHS = [
  '/version/',
  '/api/v1/namespaces/{namespace}/secrets',
  '/api/v1/namespaces/{namespace}/secrets/{name}',
  '/api/v1/namespaces/{namespace}/persistentvolumeclaims',
  '/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}',
  '/api/v1/namespaces/{namespace}/pods',
  '/api/v1/namespaces/{namespace}/pods/{name}',
  '/api/v1/namespaces/{namespace}/pods/{name}/exec',
  '/api/v1/namespaces/{namespace}/pods/{name}/log',
  '/apis/apps/v1/namespaces/{namespace}/statefulsets',
  '/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}',
  '/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}/scale',
];

const strip = (v) => {
  if (Array.isArray(v)) return v.map(strip);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'description').map(([k, x]) => [k, strip(x)]));
  return v;
};
const out = { source, sha256: createHash('sha256').update(text).digest('hex'), swagger: spec.swagger, paths: {}, parameters: {}, definitions: {} };
const pending = [];
const collect = (v) => {
  if (Array.isArray(v)) return v.forEach(collect);
  if (!v || typeof v !== 'object') return;
  if (typeof v.$ref === 'string') pending.push(v.$ref);
  Object.values(v).forEach(collect);
};
for (const p of PATHS) {
  if (!spec.paths[p]) throw new Error(`the spec has no path ${p}`);
  out.paths[p] = strip(spec.paths[p]);
  collect(out.paths[p]);
}
while (pending.length) {
  const [, kind, name] = /^#\/(parameters|definitions)\/(.+)$/.exec(pending.pop()) ?? [];
  if (!kind || out[kind][name]) continue;
  out[kind][name] = strip(spec[kind][name]);
  collect(out[kind][name]);
}
process.stdout.write(JSON.stringify(out) + '\n');
