import { ENTERPRISE_SCHEMA } from './schemas.js';
import { badRequest } from './scim-error.js';

// What Entra ID and Okta send that strict SCIM validation (scimmy) would refuse, rewritten into the
// standard shape before validation. Each rule names the client behaviour it exists for.

type Json = Record<string, unknown>;

const BOOLEAN_KEYS = new Set(['active', 'primary']);
const MANAGER_KEY = `${ENTERPRISE_SCHEMA}:manager`.toLowerCase();

export function isPlainObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The value of `key` in `object`, matching the key in any letter case (SCIM names are case-insensitive). */
export function valueIgnoringCase(object: unknown, key: string): unknown {
  if (!isPlainObject(object)) return undefined;
  const lower = key.toLowerCase();
  for (const k of Object.keys(object)) if (k.toLowerCase() === lower) return object[k];
  return undefined;
}

/** Entra: `"active": "True"`, `roles[].primary: "False"`: string booleans, any case. */
function booleanish(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const lower = value.trim().toLowerCase();
  return lower === 'true' ? true : lower === 'false' ? false : value;
}

function fixBooleans(value: unknown, key?: string): unknown {
  if (key !== undefined && isBooleanKey(key)) return booleanish(value);
  if (Array.isArray(value)) return value.map((v) => fixBooleans(v));
  if (isPlainObject(value)) {
    const out: Json = {};
    for (const k of Object.keys(value)) out[k] = fixBooleans(value[k], k.slice(k.lastIndexOf('.') + 1));
    return out;
  }
  return value;
}

/** `active` or `primary`, in any case (the last segment of a dotted key). */
function isBooleanKey(key: string): boolean {
  return (key.length === 6 || key.length === 7) && BOOLEAN_KEYS.has(key.toLowerCase());
}

/** Entra: manager as a bare id string; `{value: ""}` or "" meaning "no manager". */
function fixManager(value: unknown): unknown {
  if (typeof value === 'string') return value === '' ? null : { value };
  if (isPlainObject(value) && (value.value === '' || value.value === null)) return null;
  return value;
}

function fixEnterprise(body: Json): void {
  for (const key of Object.keys(body)) {
    if (key.toLowerCase() === ENTERPRISE_SCHEMA.toLowerCase() && isPlainObject(body[key])) {
      const ext = { ...(body[key] as Json) };
      for (const k of Object.keys(ext)) {
        if (k.toLowerCase() === 'manager') {
          const manager = fixManager(ext[k]);
          if (manager === null) delete ext[k];
          else ext[k] = manager;
        }
      }
      body[key] = ext;
    } else if (key.toLowerCase() === MANAGER_KEY) {
      const manager = fixManager(body[key]);
      body[key] = manager;
    }
  }
}

/** Normalises a POST/PUT body. Returns a new object; the input is left untouched. */
export function normalizeResourceBody(body: unknown): Json {
  if (!isPlainObject(body)) {
    throw badRequest('invalidSyntax', 'request body must be a JSON object');
  }
  const out = fixBooleans(body) as Json;
  fixEnterprise(out);
  return out;
}

export interface PatchOperation {
  op: string;
  path?: string;
  value?: unknown;
}

const VALUE_FILTER_PATH = /^([\w:.-]+?)\[\s*(\w+)\s+eq\s+"([^"]*)"\s*\]\.(\w+)$/i;

/**
 * Normalises PATCH operations for a resource whose current SCIM form is `current`.
 * - capitalised ops (Entra) → lower case
 * - string booleans (Entra without aadOptscim062020)
 * - manager as a bare string or `{value: ""}` (Entra)
 * - add/replace on `emails[type eq "work"].value` when no such element exists yet (Entra):
 *   becomes an add of a new element, as Entra expects
 * - `id` inside a path-less replace value (Okta group rename): dropped, ids are read-only
 */
export function normalizePatchOperations(operations: unknown, current: Json): PatchOperation[] {
  if (!Array.isArray(operations)) {
    throw badRequest('invalidValue', "PatchOp body must contain an 'Operations' array");
  }
  return operations.map((raw, index) => {
    if (!isPlainObject(raw)) throw badRequest('invalidValue', `operation ${index + 1} must be an object`);
    const op = typeof raw.op === 'string' ? raw.op.toLowerCase() : raw.op;
    if (op !== 'add' && op !== 'replace' && op !== 'remove') {
      // JSON.stringify, not String(): an op such as {"toString": null} would make String() throw.
      const shown = typeof raw.op === 'string' ? raw.op : JSON.stringify(raw.op);
      throw badRequest('invalidSyntax', `operation ${index + 1}: unknown op '${shown}'`);
    }
    const path = typeof raw.path === 'string' ? raw.path.trim() : raw.path;
    if (path !== undefined && typeof path !== 'string') {
      throw badRequest('invalidPath', `operation ${index + 1}: path must be a string`);
    }
    let value = raw.value;
    const lastSegment = path?.split(/[.:]/).pop()?.toLowerCase();
    if (path && lastSegment && BOOLEAN_KEYS.has(lastSegment)) value = booleanish(value);
    else value = fixBooleans(value);

    if (path && path.toLowerCase() === MANAGER_KEY) {
      const manager = fixManager(value);
      if (manager === null) return { op: 'remove', path };
      value = manager;
    }
    if (!path && isPlainObject(value)) {
      const v = { ...value };
      for (const key of Object.keys(v)) if (key.toLowerCase() === 'id') delete v[key];
      fixEnterprise(v);
      for (const key of Object.keys(v))
        if (v[key] === null && key.toLowerCase() === MANAGER_KEY) delete v[key];
      value = v;
    }
    if (path && (op === 'add' || op === 'replace')) {
      const fitted = fitValueFilterPath(op, path, value, current) ?? fitAbsentParent(path, value, current);
      if (fitted) return fitted;
    }
    return { op, ...(path !== undefined ? { path } : {}), ...(value !== undefined ? { value } : {}) };
  });
}

const EXTENSION_SUB_PATH = /^(urn:[^[\]]+):([\w$-]+)\.([\w$-]+)$/i;

/**
 * add/replace on an extension's `urn:…:manager.value` when the user has no manager yet: an add of
 * `{value}` to `urn:…:manager` (RFC 7644 §3.5.2.3: a replace of what does not exist is an add).
 * scimmy refuses the sub-attribute path there ("does not match any values"), although it accepts
 * the same on core attributes (`name.familyName` with no name).
 */
function fitAbsentParent(path: string, value: unknown, current: Json): PatchOperation | undefined {
  const match = EXTENSION_SUB_PATH.exec(path);
  if (!match || value === null || value === undefined) return undefined;
  const [, urn, attribute, sub] = match;
  const parent = valueIgnoringCase(valueIgnoringCase(current, urn), attribute);
  if (parent !== undefined && parent !== null) return undefined;
  return { op: 'add', path: `${urn}:${attribute}`, value: { [sub]: value } };
}

/**
 * add/replace on `attr[key eq "x"].sub`: creates the element when none matches (Entra expects it),
 * and matches an element whose key differs only in letter case.
 */
function fitValueFilterPath(
  op: string,
  path: string,
  value: unknown,
  current: Json,
): PatchOperation | undefined {
  const match = VALUE_FILTER_PATH.exec(path);
  if (!match) return undefined;
  const [, attribute, key, expected, sub] = match;
  const existing = valueIgnoringCase(current, attribute);
  const elements = Array.isArray(existing) ? existing : [];
  const actualValue = (element: unknown) => {
    const actual = valueIgnoringCase(element, key);
    return typeof actual === 'string' && actual.toLowerCase() === expected.toLowerCase() ? actual : undefined;
  };
  const found = elements.map(actualValue).find((v) => v !== undefined);
  if (found === expected) return undefined;
  if (found !== undefined) {
    // `type` values compare case-insensitively (caseExact false), scimmy's filter does not: match
    // the element as stored, so `emails[type eq "Work"]` reaches a stored "work".
    return { op, path: `${attribute}[${key} eq "${found}"].${sub}`, value };
  }
  return {
    op: 'add',
    path: attribute,
    value: [{ [key]: expected, [sub.toLowerCase() === 'value' ? 'value' : sub]: value }],
  };
}
