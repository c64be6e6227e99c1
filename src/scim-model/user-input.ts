import SCIMMY from 'scimmy';
import { coerceInbound } from './inbound-coerce.js';
import { checkRecordSize } from './input-limits.js';
import { isPlainObject, normalizeResourceBody, valueIgnoringCase } from './normalize.js';
import { ENTERPRISE_SCHEMA, USER_SCHEMA, VOLC_USER_SCHEMA } from './schemas.js';
import { badRequest, requestDetail, scimErrorOf } from './scim-error.js';

// A SCIM user body (POST, PUT, or the result of a PATCH) checked with scimmy's User schema and split
// into the UserInput the directory takes. The PATCH engine is user-patch.ts.

type Json = Record<string, unknown>;

/** A validated SCIM user as the directory layer receives it. */
export interface UserInput {
  /** SCIM attributes to keep (validated by scimmy; no id, meta, password, groups, externalId, active) */
  attributes: Json;
  externalId?: string;
  active?: boolean;
  /** Volcengine extension `description`; undefined when not sent */
  description?: string;
  /** body.id when the client sent one (PUT must match the path) */
  id?: string;
}

export function takeIgnoringCase(body: Json, key: string): unknown {
  for (const k of Object.keys(body)) {
    if (k.toLowerCase() === key.toLowerCase()) {
      const v = body[k];
      delete body[k];
      return v;
    }
  }
  return undefined;
}

export function descriptionFrom(volc: unknown): string | undefined {
  if (volc === undefined || volc === null) return undefined;
  if (!isPlainObject(volc)) throw badRequest('invalidValue', `${VOLC_USER_SCHEMA} must be an object`);
  const value = valueIgnoringCase(volc, 'description');
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string')
    throw badRequest('invalidValue', `${VOLC_USER_SCHEMA}:description must be a string`);
  return value;
}

/**
 * Validates and casts a user with scimmy's schema definition. `definition.coerce` runs the same
 * attribute checks as `new SCIMMY.Schemas.User(body, 'in')` (the constructor also builds
 * per-instance accessors, about 0.2 ms per body), and coerceInbound gives its result as plain
 * objects at a fraction of its cost; the one difference from the constructor, extension values left
 * with no values (an extension object, a complex attribute in one), is dropped here as the
 * constructor would.
 */
export function coerce(body: Json): Json {
  try {
    const coerced = coerceInbound(SCIMMY.Schemas.User.definition as never, body);
    return withoutEmptyExtensions(coerced);
  } catch (e) {
    const fallback = 'a value does not fit its attribute in the User schema';
    if (e instanceof TypeError) throw badRequest('invalidValue', requestDetail(e.message, fallback));
    const err = scimErrorOf(e);
    throw !err || err.status === 500 ? badRequest('invalidValue', fallback) : err;
  }
}

function withoutEmptyExtensions(coerced: Json): Json {
  for (const key of Object.keys(coerced)) {
    if (!key.toLowerCase().startsWith('urn:') || !isPlainObject(coerced[key])) continue;
    const extension = coerced[key] as Json;
    // A complex attribute left with no values (e.g. `manager: {}`) goes, as it would from an instance.
    for (const name of Object.keys(extension))
      if (isPlainObject(extension[name]) && !hasValues(extension[name])) delete extension[name];
    if (hasValues(extension)) continue;
    delete coerced[key];
    if (Array.isArray(coerced.schemas)) coerced.schemas = coerced.schemas.filter((id) => id !== key);
  }
  return coerced;
}

function hasValues(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (Array.isArray(value)) return value.some(hasValues);
  if (isPlainObject(value)) return Object.values(value).some(hasValues);
  return true;
}

/** POST/PUT body → UserInput, or a 400 with a detail that names the problem. */
export function parseUserBody(raw: unknown): UserInput {
  const body = normalizeResourceBody(raw);
  const schemas = body.schemas;
  if (schemas !== undefined) {
    if (
      !Array.isArray(schemas) ||
      !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === USER_SCHEMA.toLowerCase())
    ) {
      throw badRequest('invalidSyntax', `schemas must be an array containing '${USER_SCHEMA}'`);
    }
  } else {
    body.schemas = [USER_SCHEMA];
  }
  for (const [key, value] of Object.entries(body)) {
    // scimmy silently drops an extension that is not an object; the client would never know.
    if (key.toLowerCase() === ENTERPRISE_SCHEMA.toLowerCase() && value !== null && !isPlainObject(value))
      throw badRequest('invalidValue', `${ENTERPRISE_SCHEMA} must be an object`);
  }
  const description = descriptionFrom(takeIgnoringCase(body, VOLC_USER_SCHEMA));
  const id = takeIgnoringCase(body, 'id');
  const userName = valueIgnoringCase(body, 'userName');
  if (userName === undefined || userName === null || userName === '') {
    throw badRequest('invalidValue', 'userName is required');
  }
  if (typeof userName !== 'string') throw badRequest('invalidValue', 'userName must be a string');
  const coerced = coerce(body);
  return splitCoerced(coerced, description, typeof id === 'string' ? id : undefined);
}

export function splitCoerced(coerced: Json, description: string | undefined, id?: string): UserInput {
  const {
    schemas: _s,
    meta: _m,
    id: _i,
    password: _p,
    groups: _g,
    externalId,
    active,
    ...attributes
  } = coerced;
  if (externalId !== undefined && typeof externalId !== 'string') {
    throw badRequest('invalidValue', 'externalId must be a string');
  }
  if (active !== undefined && typeof active !== 'boolean')
    throw badRequest('invalidValue', 'active must be a boolean');
  // userName is a uniqueness key: NFC, so that `josé` typed as e + U+0301 is the same user (and
  // the same CloudIdentity UserName) as `josé` with a precomposed é.
  if (typeof attributes.userName === 'string') attributes.userName = attributes.userName.normalize('NFC');
  checkRecordSize('user', { attributes, externalId, description });
  return {
    attributes,
    ...(externalId ? { externalId } : {}),
    ...(active !== undefined ? { active } : {}),
    ...(description !== undefined ? { description } : {}),
    ...(id !== undefined ? { id } : {}),
  };
}
