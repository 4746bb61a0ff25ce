/**
 * @module Checks HTTP requests and responses against a Swagger 2.0 document: the operation (path and method), its
 * path, query and header parameters, the body schema, and the response schema for the status returned. Objects
 * are checked closed: a property the spec does not name is reported, so a misspelt field cannot pass unnoticed.
 */
import { readFileSync } from 'node:fs';

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  enum?: unknown[];
  allOf?: Schema[];
  $ref?: string;
  required?: string[];
}
interface Parameter {
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
  basePath: string;
  paths: Record<string, Record<string, Operation>>;
  definitions: Record<string, Schema>;
}

export interface MatchedOperation {
  operationId: string;
  template: string;
  params: Record<string, string>;
  op: Operation;
}

export class SwaggerCheck {
  readonly doc: SwaggerDoc;
  private readonly routes: Array<{ template: string; re: RegExp; names: string[] }>;

  constructor(file: string) {
    this.doc = JSON.parse(readFileSync(file, 'utf8')) as SwaggerDoc;
    // Literal segments beat parameters (`/machines/{id}/lease` vs a parameter there), so longer literals go first.
    this.routes = Object.keys(this.doc.paths)
      .map((template) => {
        const names: string[] = [];
        const re = new RegExp(`^${template.replace(/\{([^}]+)\}/g, (_m, n: string) => (names.push(n), '([^/]+)'))}$`);
        return { template, re, names };
      })
      .sort((a, b) => b.template.replace(/\{[^}]+\}/g, '').length - a.template.replace(/\{[^}]+\}/g, '').length);
  }

  /** The operation for a path below basePath, or undefined when the spec has no such path and method. */
  match(method: string, path: string): MatchedOperation | undefined {
    for (const r of this.routes) {
      const m = r.re.exec(path);
      if (!m) continue;
      const op = this.doc.paths[r.template]![method.toLowerCase()];
      if (!op) continue;
      const params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
      return { operationId: op.operationId, template: r.template, params, op };
    }
    return undefined;
  }

  /** Problems with a request to a matched operation; empty when it is one the spec allows. */
  checkRequest(m: MatchedOperation, query: URLSearchParams, headers: Record<string, string | string[] | undefined>, body: unknown, hasBody: boolean): string[] {
    const problems: string[] = [];
    const params = m.op.parameters ?? [];
    for (const p of params.filter((p) => p.in === 'path')) {
      problems.push(...this.checkValue(`path parameter ${p.name}`, m.params[p.name], p));
    }
    const declaredQuery = params.filter((p) => p.in === 'query');
    for (const name of new Set(query.keys())) {
      const p = declaredQuery.find((q) => q.name === name);
      if (!p) problems.push(`query parameter "${name}" is not in the spec`);
      else for (const v of query.getAll(name)) problems.push(...this.checkValue(`query parameter ${name}`, v, p));
    }
    for (const p of declaredQuery.filter((p) => p.required && !query.has(p.name))) problems.push(`required query parameter "${p.name}" is missing`);
    for (const p of params.filter((p) => p.in === 'header')) {
      const v = headers[p.name.toLowerCase()];
      if (p.required && v === undefined) problems.push(`required header "${p.name}" is missing`);
    }
    const bodyParam = params.find((p) => p.in === 'body');
    if (!bodyParam && hasBody) problems.push('a request body was sent, but the operation takes none');
    if (bodyParam?.required && !hasBody) problems.push('the required request body is missing');
    if (bodyParam && hasBody) problems.push(...this.checkSchema(body, bodyParam.schema ?? {}, 'body'));
    return problems;
  }

  /** Problems with a response: the status must be declared (an undeclared error must be an ErrorResponse). */
  checkResponse(m: MatchedOperation, status: number, body: unknown, hasBody: boolean): string[] {
    const declared = m.op.responses[String(status)];
    if (!declared && status < 400) return [`status ${status} is not among the operation's responses`];
    const schema = declared ? declared.schema : { $ref: '#/definitions/ErrorResponse' };
    if (!schema) return hasBody && body !== '' ? [`status ${status} has no body in the spec, but one was sent`] : [];
    if (!hasBody) return [`status ${status} needs a body`];
    return this.checkSchema(body, schema, 'response');
  }

  private checkValue(what: string, raw: string | undefined, p: Parameter): string[] {
    if (raw === undefined) return p.required ? [`${what} is missing`] : [];
    if (p.type === 'integer' && !/^-?\d+$/.test(raw)) return [`${what} must be an integer, got "${raw}"`];
    if (p.type === 'boolean' && raw !== 'true' && raw !== 'false') return [`${what} must be true or false, got "${raw}"`];
    // Enum parameters "support repeated or comma-separated values" (wait's state).
    if (p.enum && !raw.split(',').every((v) => p.enum!.includes(v))) return [`${what} must be one of ${p.enum.join(', ')}, got "${raw}"`];
    return [];
  }

  checkSchema(value: unknown, schema: Schema, at: string): string[] {
    if (schema.$ref) return this.checkSchema(value, this.resolve(schema.$ref), at);
    if (schema.allOf) return schema.allOf.flatMap((s) => this.checkSchema(value, s, at));
    const problems: string[] = [];
    if (schema.enum && !schema.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} is not one of ${schema.enum.join(', ')}`);
    // An untyped schema with properties is still an object; one without anything allows any value.
    const type = schema.type ?? (schema.properties ? 'object' : undefined);
    switch (type) {
      case undefined:
        return problems;
      case 'object': {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) return [...problems, `${at}: expected an object, got ${describe(value)}`];
        for (const [k, v] of Object.entries(value)) {
          const prop = schema.properties?.[k];
          if (prop) problems.push(...this.checkSchema(v, prop, `${at}.${k}`));
          else if (typeof schema.additionalProperties === 'object') problems.push(...this.checkSchema(v, schema.additionalProperties, `${at}.${k}`));
          else if (schema.additionalProperties !== true) problems.push(`${at}.${k} is not in the spec`);
        }
        for (const k of schema.required ?? []) if (!(k in value)) problems.push(`${at}.${k} is required`);
        return problems;
      }
      case 'array':
        if (!Array.isArray(value)) return [...problems, `${at}: expected an array, got ${describe(value)}`];
        return [...problems, ...value.flatMap((v, i) => this.checkSchema(v, schema.items ?? {}, `${at}[${i}]`))];
      case 'string':
        return typeof value === 'string' ? problems : [...problems, `${at}: expected a string, got ${describe(value)}`];
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
    const name = ref.replace('#/definitions/', '');
    const s = this.doc.definitions[name];
    if (!s) throw new Error(`the spec refers to a missing definition ${ref}`);
    return s;
  }
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}
