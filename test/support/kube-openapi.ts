/**
 * @module Checks HTTP exchanges against the published Kubernetes OpenAPI (v2) spec: which path and method exist,
 * which query parameters an operation takes, and whether a request or response body fits its schema (types,
 * formats, required fields, enums, and no field the schema does not have, as the API server's strict field
 * validation would). The spec is the part of Kubernetes 1.34's that the provider uses (test/fixtures, cut by
 * scripts/extract-kubernetes-openapi.mjs).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './cli.js';

interface Schema {
  $ref?: string;
  type?: string;
  format?: string;
  enum?: unknown[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
}
interface Parameter {
  $ref?: string;
  name: string;
  in: 'query' | 'path' | 'body' | 'header';
  type?: string;
  required?: boolean;
  schema?: Schema;
}
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  responses: Record<string, { schema?: Schema }>;
}
interface Spec {
  source: string;
  paths: Record<string, Record<string, Operation | Parameter[]>>;
  parameters: Record<string, Parameter>;
  definitions: Record<string, Schema>;
}

export interface Route {
  operationId: string;
  /** The path's template values: namespace, name. */
  params: Record<string, string>;
  /** The response schema for a status code, to check what the stand-in answers. */
  responseSchema(code: number): Schema | undefined;
  body?: Schema;
}

export class KubeOpenApi {
  private readonly spec: Spec = JSON.parse(readFileSync(join(REPO, 'test', 'fixtures', 'kubernetes-openapi.json'), 'utf8')) as Spec;
  private readonly templates = Object.keys(this.spec.paths).map((t) => ({
    template: t,
    names: [...t.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!),
    // The spec writes `/version/`; the server answers (and clients ask) `/version`: a trailing slash is optional.
    re: new RegExp(`^${t.replace(/\/$/, '').replace(/[.]/g, '\\.').replace(/\{\w+\}/g, '([^/]+)')}/?$`),
  }));

  get source(): string {
    return this.spec.source;
  }

  /** The operation a request is, or a list of what the spec does not allow about it. */
  route(method: string, path: string, query: URLSearchParams): Route | { violations: string[] } {
    const t = this.templates.find((x) => x.re.test(path));
    if (!t) return { violations: [`${method} ${path}: no such path in the Kubernetes API`] };
    const item = this.spec.paths[t.template]!;
    const op = item[method.toLowerCase()] as Operation | undefined;
    if (!op || Array.isArray(op)) return { violations: [`${method} ${t.template}: the path has no ${method}`] };
    const params = [...((item.parameters as Parameter[] | undefined) ?? []), ...(op.parameters ?? [])].map((p) => this.param(p));
    const violations: string[] = [];
    for (const key of new Set(query.keys())) {
      const p = params.find((x) => x.in === 'query' && x.name === key);
      if (!p) violations.push(`${op.operationId}: unknown query parameter "${key}"`);
      else for (const v of query.getAll(key)) if (!fitsSimple(p.type, v)) violations.push(`${op.operationId}: query ${key}=${v} is not a ${p.type}`);
    }
    if (violations.length) return { violations };
    const values = t.re.exec(path)!.slice(1).map(decodeURIComponent);
    const body = params.find((p) => p.in === 'body')?.schema;
    return {
      operationId: op.operationId,
      params: Object.fromEntries(t.names.map((n, i) => [n, values[i]!])),
      responseSchema: (code) => op.responses[String(code)]?.schema,
      ...(body ? { body } : {}),
    };
  }

  /** Every way `value` departs from `schema`, as `where: what` sentences; empty when it fits. */
  check(schema: Schema, value: unknown, where = '$'): string[] {
    const s = this.resolve(schema);
    if (value === null || value === undefined) return [];
    if (s.enum && !s.enum.includes(value)) return [`${where}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s.enum)}`];
    if (s.format === 'int-or-string') return typeof value === 'string' || Number.isInteger(value) ? [] : [`${where}: not an int or string`];
    switch (s.type) {
      case 'string':
        if (typeof value !== 'string') return [`${where}: ${JSON.stringify(value)} is not a string`];
        if (s.format === 'date-time' && Number.isNaN(Date.parse(value))) return [`${where}: "${value}" is not a date-time`];
        if (s.format === 'byte' && !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return [`${where}: not base64`];
        return [];
      case 'integer':
        return Number.isInteger(value) ? [] : [`${where}: ${JSON.stringify(value)} is not an integer`];
      case 'number':
        return typeof value === 'number' ? [] : [`${where}: ${JSON.stringify(value)} is not a number`];
      case 'boolean':
        return typeof value === 'boolean' ? [] : [`${where}: ${JSON.stringify(value)} is not a boolean`];
      case 'array':
        if (!Array.isArray(value)) return [`${where}: not an array`];
        return value.flatMap((v, i) => (s.items ? this.check(s.items, v, `${where}[${i}]`) : []));
      case 'object':
      case undefined: {
        if (typeof value !== 'object' || Array.isArray(value)) return s.type ? [`${where}: not an object`] : [];
        const obj = value as Record<string, unknown>;
        const out = (s.required ?? []).filter((k) => obj[k] === undefined).map((k) => `${where}: required field "${k}" is missing`);
        for (const [k, v] of Object.entries(obj)) {
          const prop = s.properties?.[k];
          if (prop) out.push(...this.check(prop, v, `${where}.${k}`));
          else if (typeof s.additionalProperties === 'object') out.push(...this.check(s.additionalProperties, v, `${where}.${k}`));
          // An object schema with no properties at all (RawExtension, FieldsV1) takes anything.
          else if (s.properties) out.push(`${where}: unknown field "${k}"`);
        }
        return out;
      }
      default:
        return [`${where}: the spec has type ${s.type}, which this check does not know`];
    }
  }

  private resolve(s: Schema): Schema {
    const ref = s.$ref;
    if (!ref) return s;
    const def = this.spec.definitions[ref.replace('#/definitions/', '')];
    if (!def) throw new Error(`the spec extract lacks ${ref}; re-run scripts/extract-kubernetes-openapi.mjs`);
    return this.resolve(def);
  }

  private param(p: Parameter): Parameter {
    return p.$ref ? this.spec.parameters[p.$ref.replace('#/parameters/', '')]! : p;
  }
}

function fitsSimple(type: string | undefined, v: string): boolean {
  if (type === 'boolean') return v === 'true' || v === 'false';
  if (type === 'integer') return /^-?\d+$/.test(v);
  return true;
}
