import SCIMMY from 'scimmy';

// scimmy's SchemaDefinition#coerce(body, 'in') at a fraction of its cost. scimmy wraps every
// complex value in a frozen object with a getter and a validating setter per sub-attribute (most of
// a POST's validation CPU, and garbage); the bridge only ever reads the result as JSON. This walks
// the same definition with the same rules and builds plain objects equal to scimmy's result as JSON
// (key order included); every non-complex value is still checked and cast by scimmy's own
// Attribute#coerce. Whenever a check fails, or the body takes a path not modelled here, scimmy's
// coerce runs on the body instead, so a refused body gets scimmy's error, word for word.

type Json = Record<string, unknown>;

interface AttributeConfig {
  direction?: string;
  required?: boolean;
  multiValued?: boolean;
  canonicalValues?: unknown;
  returned?: unknown;
}

interface AttributeLike {
  type: string;
  name: string;
  config: AttributeConfig;
  subAttributes?: AttributeLike[];
  coerce(source: unknown, direction: string): unknown;
}

interface DefinitionLike {
  id: string;
  name: string;
  required?: boolean;
  attributes: Array<AttributeLike | DefinitionLike>;
  coerce(data: unknown, direction: string): unknown;
}

/** Not modelled here, or refused: scimmy decides (and words the error). */
class Unmodelled extends Error {}

const isDefinition = (a: unknown): a is DefinitionLike => a instanceof SCIMMY.Types.SchemaDefinition;

/** `definition.coerce(data, 'in')`, as plain JSON-shaped objects. */
export function coerceInbound(definition: DefinitionLike, data: Json): Json {
  try {
    return coerceDefinition(definition, data, 'in');
  } catch {
    return definition.coerce(data, 'in') as Json;
  }
}

function coerceDefinition(definition: DefinitionLike, data: Json, direction: string): Json {
  const attributes = definition.attributes;
  const extensionIds = attributes.filter(isDefinition).map((d) => d.id);
  const schemas = [
    ...new Set([
      definition.id,
      ...extensionIds.filter(
        (id) =>
          data[id] !== undefined ||
          Object.entries(data).some(([k, v]) => v !== undefined && k.startsWith(`${id}:`)),
      ),
      ...(Array.isArray(data.schemas) ? data.schemas : []),
    ]),
  ];
  const source: Json = {};
  for (const key of Object.keys(data)) {
    const lower = key.toLowerCase();
    if (lower === '__proto__') throw new Unmodelled();
    source[lower] = data[key];
  }
  const meta = data.meta;
  if (meta !== undefined && meta !== null && !isObject(meta)) throw new Unmodelled();
  source.schemas = schemas;
  source.meta = { ...((meta as Json | null | undefined) ?? {}), resourceType: definition.name };

  const target: Json = {};
  for (const attribute of attributes) {
    if (!isDefinition(attribute)) {
      const value = coerceAttribute(attribute, source[attribute.name.toLowerCase()], direction);
      if (value !== undefined) target[attribute.name] = value;
      continue;
    }
    // An extension: its object, and any `urn:…:attribute` keys at the top level (not modelled).
    const prefix = `${attribute.id.toLowerCase()}:`;
    if (Object.keys(source).some((k) => k.startsWith(prefix))) throw new Unmodelled();
    const value = source[attribute.id.toLowerCase()] ?? {};
    if (!isObject(value)) throw new Unmodelled();
    const mixed = merge({}, value);
    const present = Object.keys(mixed).length > 0;
    if (attribute.required && !present) throw new Unmodelled();
    if (attribute.required || present) target[attribute.id] = coerceDefinition(attribute, mixed, direction);
  }
  return target;
}

/** scimmy's merge of an extension's values: keys in lower case, nested objects merged, arrays copied. */
function merge(target: Json, source: Json): Json {
  const out: Json = {};
  for (const key of Object.keys(target)) out[key.toLowerCase()] = target[key];
  for (const key of Object.keys(source)) {
    const lower = key.toLowerCase();
    if (lower === '__proto__') throw new Unmodelled();
    const value = source[key];
    if (Array.isArray(value)) {
      const existing = out[lower];
      if (Array.isArray(existing)) existing.push(...value);
      else out[lower] = [...value];
    } else if (!isObject(value)) {
      if (value !== null && typeof value === 'object') throw new Unmodelled();
      out[lower] = value;
    } else {
      const existing = out[lower] ?? {};
      if (!isObject(existing)) throw new Unmodelled();
      out[lower] = merge(existing, value);
    }
  }
  return out;
}

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);
}

function coerceAttribute(attribute: AttributeLike, source: unknown, direction: string): unknown {
  const { config } = attribute;
  // Absent and optional: scimmy has nothing to check and gives undefined (most attributes).
  if (source === undefined && !config.required) return undefined;
  const inDirection = direction === 'both' || config.direction === direction || config.direction === 'both';
  if (attribute.type !== 'complex') {
    // A single string or boolean of its type passes scimmy's checks unchanged.
    if (inDirection && !config.multiValued && !Array.isArray(config.canonicalValues)) {
      if (attribute.type === 'string' && typeof source === 'string') return source;
      if (attribute.type === 'boolean' && typeof source === 'boolean') return source;
    }
    const value = attribute.coerce(source, direction);
    // scimmy's multi-valued results are Proxies over arrays: plain copies.
    return Array.isArray(value) ? [...value] : value;
  }
  if (!inDirection) return undefined;
  if (Array.isArray(config.canonicalValues)) throw new Unmodelled();
  if (source === undefined || source === null) {
    if (config.required) throw new Unmodelled();
    if (source === null && config.multiValued) throw new Unmodelled();
    return undefined;
  }
  if (!config.multiValued) {
    if (Array.isArray(source)) throw new Unmodelled();
    return complexValue(attribute, source, direction);
  }
  if (!Array.isArray(source)) throw new Unmodelled();
  return source.map((item) => complexValue(attribute, item, direction));
}

/** Sub-attributes by lower-case name, per attribute (definitions are process-global and fixed). */
const subsByName = new WeakMap<AttributeLike, Map<string, AttributeLike>>();

function subAttributes(attribute: AttributeLike): Map<string, AttributeLike> {
  let byName = subsByName.get(attribute);
  if (!byName) {
    byName = new Map((attribute.subAttributes ?? []).map((s) => [s.name.toLowerCase(), s]));
    subsByName.set(attribute, byName);
  }
  return byName;
}

/** One complex value: sub-attributes matched in any letter case, unknown ones ignored. */
function complexValue(attribute: AttributeLike, source: unknown, direction: string): Json {
  if (!isObject(source)) throw new Unmodelled();
  const subs = subAttributes(attribute);
  const coerced = new Map<AttributeLike, unknown>();
  // Key order as scimmy's toJSON gives it: the order the client sent the sub-attributes in.
  for (const key of Object.keys(source)) {
    const sub = subs.get(key.toLowerCase());
    if (sub) coerced.set(sub, coerceAttribute(sub, source[key], direction));
  }
  const out: Json = {};
  for (const [sub, value] of coerced) {
    if (value !== undefined && sub.config.returned !== false && sub.config.returned !== 'never')
      out[sub.name] = value;
  }
  // A required sub-attribute the value lacks: scimmy refuses it.
  for (const sub of subs.values()) {
    if (sub.config.required && coerced.get(sub) === undefined) coerceAttribute(sub, undefined, direction);
  }
  return out;
}
