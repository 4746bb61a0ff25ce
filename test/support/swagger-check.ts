/**
 * @module Checks HTTP requests and responses against a Swagger 2.0 document, for the stand-ins that play Fly's
 * Machines API and the Kubernetes API: the operation (path and method), its path, query and header parameters
 * (declared on the operation or on its path, inline or by `$ref`), the body schema, and the response schema for the
 * status returned. Objects are checked closed: a property the spec does not name is reported, so a misspelt field
 * cannot pass unnoticed. Where the two APIs read the same document differently, a `Dialect` says how.
 */
import { readFileSync } from 'node:fs';

export interface Schema {
  $ref?: string;
  type?: string;
  format?: string;
  enum?: unknown[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  allOf?: Schema[];
  required?: string[];
}
interface Parameter {
  $ref?: string;
  name: string;
  in: 'path' | 'query' | 'header' | 'body';
  type?: string;
  enum?: unknown[];
  required?: boolean;
  schema?: Schema;
}
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  responses: Record<string, { schema?: Schema }>;
}
interface SwaggerDoc {
  /** Where the document was cut from (the Kubernetes extract says). */
  source?: string;
  basePath?: string;
  paths: Record<string, Record<string, Operation | Parameter[]>>;
  parameters?: Record<string, Parameter>;
  definitions: Record<string, Schema>;
}

/** How an API reads its spec where Swagger leaves room; the defaults are the strict reading. */
export interface Dialect {
  /** `null` stands for an absent field, as Go's JSON decoding reads it (Kubernetes). */
  nullIsAbsent?: boolean;
  /** An object schema that names no properties at all is free-form (Kubernetes' FieldsV1, RawExtension). */
  propertylessObjectsAreOpen?: boolean;
  /** The schema of an error status the operation does not declare (Fly: every error is an ErrorResponse). */
  undeclaredErrorSchema?: Schema;
}

export interface MatchedOperation {
  operationId: string;
  template: string;
  params: Record<string, string>;
  op: Operation;
  /** The operation's parameters and its path's, `$ref`s resolved. */
  parameters: Parameter[];
}

export class SwaggerCheck {
  readonly doc: SwaggerDoc;
  private readonly routes: Array<{ template: string; re: RegExp; names: string[] }>;

  constructor(
    private readonly file: string,
    private readonly dialect: Dialect = {},
  ) {
    this.doc = JSON.parse(readFileSync(file, 'utf8')) as SwaggerDoc;
    // Literal segments beat parameters (`/machines/{id}/lease` vs a parameter there), so longer literals go first.
    this.routes = Object.keys(this.doc.paths)
      .map((template) => {
        const names: string[] = [];
        const pattern = template
          .replace(/\/$/, '')
          .split(/(\{[^}]+\})/)
          .map((part) => (/^\{.+\}$/.test(part) ? (names.push(part.slice(1, -1)), '([^/]+)') : part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
          .join('');
        // Kubernetes' spec writes `/version/`, where its server answers (and clients ask) `/version`.
        const re = new RegExp(`^${pattern}${template.endsWith('/') ? '/?' : ''}$`);
        return { template, re, names };
      })
      .sort((a, b) => b.template.replace(/\{[^}]+\}/g, '').length - a.template.replace(/\{[^}]+\}/g, '').length);
  }

  /** Where the spec came from, to name it in a test's message. */
  get source(): string {
    return this.doc.source ?? this.file;
  }

  /** The operation for a path (below basePath, if the spec has one), or undefined when the spec has no such path and method. */
  match(method: string, path: string): MatchedOperation | undefined {
    for (const r of this.routes) {
      const m = r.re.exec(path);
      if (!m) continue;
      const item = this.doc.paths[r.template]!;
      const op = item[method.toLowerCase()];
      if (!op || Array.isArray(op)) continue;
      const params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
      const parameters = [...((item.parameters as Parameter[] | undefined) ?? []), ...(op.parameters ?? [])].map((p) => this.parameter(p));
      return { operationId: op.operationId, template: r.template, params, op, parameters };
    }
    return undefined;
  }

  /** Problems with a request's path, query and header parameters; empty when the spec allows them. */
  checkParameters(m: MatchedOperation, query: URLSearchParams, headers: Record<string, string | string[] | undefined>): string[] {
    const problems: string[] = [];
    for (const p of m.parameters.filter((p) => p.in === 'path')) {
      problems.push(...checkValue(`path parameter ${p.name}`, m.params[p.name], p));
    }
    const declaredQuery = m.parameters.filter((p) => p.in === 'query');
    for (const name of new Set(query.keys())) {
      const p = declaredQuery.find((q) => q.name === name);
      if (!p) problems.push(`query parameter "${name}" is not in the spec`);
      else for (const v of query.getAll(name)) problems.push(...checkValue(`query parameter ${name}`, v, p));
    }
    for (const p of declaredQuery.filter((p) => p.required && !query.has(p.name))) problems.push(`required query parameter "${p.name}" is missing`);
    for (const p of m.parameters.filter((p) => p.in === 'header')) {
      const v = headers[p.name.toLowerCase()];
      if (p.required && v === undefined) problems.push(`required header "${p.name}" is missing`);
    }
    return problems;
  }

  /** Problems with a request's body: one the operation does not take, a missing required one, or one off its schema. */
  checkBody(m: MatchedOperation, body: unknown, hasBody: boolean): string[] {
    const bodyParam = m.parameters.find((p) => p.in === 'body');
    if (!bodyParam && hasBody) return ['a request body was sent, but the operation takes none'];
    if (bodyParam?.required && !hasBody) return ['the required request body is missing'];
    return bodyParam && hasBody ? this.checkSchema(body, bodyParam.schema ?? {}, 'body') : [];
  }

  /** Problems with a whole request to a matched operation; empty when it is one the spec allows. */
  checkRequest(m: MatchedOperation, query: URLSearchParams, headers: Record<string, string | string[] | undefined>, body: unknown, hasBody: boolean): string[] {
    return [...this.checkParameters(m, query, headers), ...this.checkBody(m, body, hasBody)];
  }

  /** Problems with a response: the status must be declared (or be an error the dialect gives a schema). */
  checkResponse(m: MatchedOperation, status: number, body: unknown, hasBody: boolean): string[] {
    const declared = m.op.responses[String(status)];
    const fallback = status >= 400 ? this.dialect.undeclaredErrorSchema : undefined;
    if (!declared && !fallback) return [`status ${status} is not among the operation's responses`];
    const schema = declared ? declared.schema : fallback;
    if (!schema) return hasBody && body !== '' ? [`status ${status} has no body in the spec, but one was sent`] : [];
    if (!hasBody) return [`status ${status} needs a body`];
    return this.checkSchema(body, schema, 'response');
  }

  /** Every way `value` departs from `schema`, as `where: what` sentences; empty when it fits. */
  checkSchema(value: unknown, schema: Schema, at: string): string[] {
    if (schema.$ref) return this.checkSchema(value, this.resolve(schema.$ref), at);
    if (schema.allOf) return schema.allOf.flatMap((s) => this.checkSchema(value, s, at));
    // A field set to undefined is not serialized: it is absent, which `required` judges.
    if (value === undefined || (value === null && this.dialect.nullIsAbsent)) return [];
    const problems: string[] = [];
    if (schema.enum && !schema.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} is not one of ${schema.enum.join(', ')}`);
    if (schema.format === 'int-or-string') return typeof value === 'string' || Number.isInteger(value) ? problems : [...problems, `${at}: expected an integer or a string, got ${describe(value)}`];
    // An untyped schema with properties is still an object; one without anything allows any value.
    const type = schema.type ?? (schema.properties ? 'object' : undefined);
    switch (type) {
      case undefined:
        return problems;
      case 'object': {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) return [...problems, `${at}: expected an object, got ${describe(value)}`];
        const open = schema.additionalProperties === true || (!schema.properties && !schema.additionalProperties && this.dialect.propertylessObjectsAreOpen);
        for (const [k, v] of Object.entries(value)) {
          const prop = schema.properties?.[k];
          if (prop) problems.push(...this.checkSchema(v, prop, `${at}.${k}`));
          else if (typeof schema.additionalProperties === 'object') problems.push(...this.checkSchema(v, schema.additionalProperties, `${at}.${k}`));
          else if (!open && v !== undefined) problems.push(`${at}.${k} is not in the spec`);
        }
        for (const k of schema.required ?? []) if ((value as Record<string, unknown>)[k] === undefined) problems.push(`${at}.${k} is required`);
        return problems;
      }
      case 'array':
        if (!Array.isArray(value)) return [...problems, `${at}: expected an array, got ${describe(value)}`];
        return [...problems, ...value.flatMap((v, i) => this.checkSchema(v, schema.items ?? {}, `${at}[${i}]`))];
      case 'string':
        if (typeof value !== 'string') return [...problems, `${at}: expected a string, got ${describe(value)}`];
        if (schema.format === 'date-time' && Number.isNaN(Date.parse(value))) problems.push(`${at}: "${value}" is not a date-time`);
        if (schema.format === 'byte' && !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) problems.push(`${at}: not base64`);
        return problems;
      case 'integer':
        return Number.isInteger(value) ? problems : [...problems, `${at}: expected an integer, got ${describe(value)}`];
      case 'number':
        return typeof value === 'number' ? problems : [...problems, `${at}: expected a number, got ${describe(value)}`];
      case 'boolean':
        return typeof value === 'boolean' ? problems : [...problems, `${at}: expected a boolean, got ${describe(value)}`];
      default:
        return [...problems, `${at}: the spec uses type "${schema.type}", which this checker does not know`];
    }
  }

  private resolve(ref: string): Schema {
    const s = this.doc.definitions[ref.replace('#/definitions/', '')];
    if (!s) throw new Error(`the spec refers to a missing definition ${ref}`);
    return s;
  }

  private parameter(p: Parameter): Parameter {
    if (!p.$ref) return p;
    const resolved = this.doc.parameters?.[p.$ref.replace('#/parameters/', '')];
    if (!resolved) throw new Error(`the spec refers to a missing parameter ${p.$ref}`);
    return resolved;
  }
}

function checkValue(what: string, raw: string | undefined, p: Parameter): string[] {
  if (raw === undefined) return p.required ? [`${what} is missing`] : [];
  if (p.type === 'integer' && !/^-?\d+$/.test(raw)) return [`${what} must be an integer, got "${raw}"`];
  if (p.type === 'boolean' && raw !== 'true' && raw !== 'false') return [`${what} must be true or false, got "${raw}"`];
  // Enum parameters "support repeated or comma-separated values" (Fly's wait state).
  if (p.enum && !raw.split(',').every((v) => p.enum!.includes(v))) return [`${what} must be one of ${p.enum.join(', ')}, got "${raw}"`];
  return [];
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}
