// A small JSON Schema (2020-12 subset, as OpenAPI 3.1 uses it) validator over a parsed document:
// $ref (local), type, const, enum, properties, required, additionalProperties,
// unevaluatedProperties (false, across allOf), items, min/maxItems, min/maxLength, pattern,
// minimum/maximum, format (date-time, uri), allOf/anyOf/oneOf. Annotations (readOnly, writeOnly,
// description, example) are ignored. Enough to hold the bridge to its OpenAPI description.

type Schema = Record<string, unknown> | boolean;
type Json = unknown;

export class SchemaValidator {
  constructor(private readonly root: Record<string, unknown>) {}

  /** Follows a local `#/a/b` pointer. */
  resolve<T = Record<string, unknown>>(ref: string): T {
    if (!ref.startsWith('#/')) throw new Error(`only local $ref supported: ${ref}`);
    let node: unknown = this.root;
    for (const raw of ref.slice(2).split('/')) {
      const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      node = (node as Record<string, unknown>)?.[key];
      if (node === undefined) throw new Error(`unresolvable $ref ${ref}`);
    }
    return node as T;
  }

  /** Dereferences an object that may be `{ $ref }`. */
  deref<T = Record<string, unknown>>(node: unknown): T {
    let n = node as Record<string, unknown>;
    while (n && typeof n.$ref === 'string') n = this.resolve(n.$ref);
    return n as T;
  }

  /** Every problem, as `path: message`; empty when valid. */
  validate(schema: Schema, value: Json, path = '$'): string[] {
    const errors: string[] = [];
    this.check(schema, value, path, errors);
    return errors;
  }

  private check(schema: Schema, value: Json, path: string, errors: string[]): void {
    if (schema === true) return;
    if (schema === false) {
      errors.push(`${path}: no value allowed`);
      return;
    }
    if (typeof schema.$ref === 'string') this.check(this.resolve(schema.$ref), value, path, errors);

    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
      if (!types.some((t) => typeOk(t, value))) {
        errors.push(`${path}: expected ${types.join('|')}, got ${describe(value)}`);
        return;
      }
    }
    if ('const' in schema && !deepEqual(schema.const, value))
      errors.push(`${path}: expected ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`);
    if (Array.isArray(schema.enum) && !schema.enum.some((e) => deepEqual(e, value)))
      errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);

    if (typeof value === 'string') {
      if (typeof schema.minLength === 'number' && [...value].length < schema.minLength)
        errors.push(`${path}: shorter than ${schema.minLength}`);
      if (typeof schema.maxLength === 'number' && [...value].length > schema.maxLength)
        errors.push(`${path}: longer than ${schema.maxLength}`);
      if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value))
        errors.push(`${path}: does not match ${schema.pattern}`);
      if (
        schema.format === 'date-time' &&
        !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(value)
      )
        errors.push(`${path}: not an RFC 3339 date-time: ${value}`);
      if (schema.format === 'uri' && !URL.canParse(value)) errors.push(`${path}: not a URI: ${value}`);
    }
    if (typeof value === 'number') {
      if (typeof schema.minimum === 'number' && value < schema.minimum)
        errors.push(`${path}: below ${schema.minimum}`);
      if (typeof schema.maximum === 'number' && value > schema.maximum)
        errors.push(`${path}: above ${schema.maximum}`);
    }
    if (Array.isArray(value)) {
      if (typeof schema.minItems === 'number' && value.length < schema.minItems)
        errors.push(`${path}: fewer than ${schema.minItems} items`);
      if (typeof schema.maxItems === 'number' && value.length > schema.maxItems)
        errors.push(`${path}: more than ${schema.maxItems} items`);
      if (schema.items !== undefined)
        for (const [i, item] of value.entries())
          this.check(schema.items as Schema, item, `${path}[${i}]`, errors);
    }
    if (isObject(value)) {
      const properties = (schema.properties ?? {}) as Record<string, Schema>;
      for (const name of (schema.required as string[] | undefined) ?? []) {
        if (!(name in value)) errors.push(`${path}: missing required '${name}'`);
      }
      for (const [name, v] of Object.entries(value)) {
        if (name in properties) this.check(properties[name], v, `${path}.${name}`, errors);
        else if (schema.additionalProperties === false) errors.push(`${path}: unexpected property '${name}'`);
        else if (isObject(schema.additionalProperties))
          this.check(schema.additionalProperties as Schema, v, `${path}.${name}`, errors);
      }
      if (schema.unevaluatedProperties === false) {
        const known = this.evaluatedProperties(schema);
        for (const name of Object.keys(value)) {
          if (!known.has(name)) errors.push(`${path}: unexpected property '${name}'`);
        }
      }
    }

    if (Array.isArray(schema.allOf))
      for (const s of schema.allOf) this.check(s as Schema, value, path, errors);
    if (Array.isArray(schema.anyOf)) {
      if (!schema.anyOf.some((s) => this.validate(s as Schema, value, path).length === 0))
        errors.push(`${path}: matches none of anyOf`);
    }
    if (Array.isArray(schema.oneOf)) {
      const matches = schema.oneOf.filter((s) => this.validate(s as Schema, value, path).length === 0).length;
      if (matches !== 1) errors.push(`${path}: matches ${matches} of oneOf, expected exactly 1`);
    }
  }

  /** Property names declared by the schema itself, its $ref and its allOf members. */
  private evaluatedProperties(schema: Schema, seen = new Set<unknown>()): Set<string> {
    const names = new Set<string>();
    if (typeof schema !== 'object' || seen.has(schema)) return names;
    seen.add(schema);
    for (const k of Object.keys((schema.properties ?? {}) as object)) names.add(k);
    if (typeof schema.$ref === 'string')
      for (const k of this.evaluatedProperties(this.resolve(schema.$ref), seen)) names.add(k);
    for (const s of (schema.allOf ?? []) as Schema[])
      for (const k of this.evaluatedProperties(s, seen)) names.add(k);
    return names;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeOk(type: string, v: unknown): boolean {
  switch (type) {
    case 'object':
      return isObject(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
      return typeof v === 'string';
    case 'boolean':
      return typeof v === 'boolean';
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'null':
      return v === null;
    default:
      throw new Error(`unknown type ${type}`);
  }
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
