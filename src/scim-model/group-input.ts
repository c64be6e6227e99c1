import { type Filter, parseFilter } from './filter.js';
import { checkMemberCount, checkRecordSize, DEFAULT_MAX_MEMBERS_PER_REQUEST } from './input-limits.js';
import { isPlainObject } from './normalize.js';
import { GROUP_SCHEMA, LIMITS } from './schemas.js';
import { badRequest, type ScimError } from './scim-error.js';

// SCIM Group requests → plain plans for the directory layer. Everything a client can get wrong is
// rejected here, with a detail naming the problem, before any upstream call. Membership is kept as
// member SCIM ids: the directory translates them to CloudIdentity UserIds.

type Json = Record<string, unknown>;

/** A validated POST/PUT group body. */
export interface GroupInput {
  displayName: string;
  /** null: absent (PUT clears it) */
  externalId: string | null;
  /** Member SCIM ids; undefined when the body has no `members` (PUT leaves them alone). */
  members?: string[];
  /** body.id when sent (PUT must match the path) */
  id?: string;
}

/**
 * One PATCH operation on `members`, in request order. Explicit ids are deltas that need no read of
 * the current member list; `replace`, `removeAll` and `removeWhere` are defined against it.
 */
export type MemberOperation =
  | { kind: 'add'; ids: string[] }
  | { kind: 'remove'; ids: string[] }
  | { kind: 'replace'; ids: string[] }
  | { kind: 'removeAll' }
  | { kind: 'removeWhere'; filter: Filter; expression: string };

/** A validated group PATCH. */
export interface GroupPatch {
  /** new displayName (last operation wins) */
  displayName?: string;
  /** new externalId; null removes it */
  externalId?: string | null;
  members: MemberOperation[];
}

/** MAX_MEMBERS_PER_REQUEST: member values one POST, PUT or PATCH may name in all. */
export interface GroupInputLimits {
  maxMembers: number;
}
const DEFAULT_LIMITS: GroupInputLimits = { maxMembers: DEFAULT_MAX_MEMBERS_PER_REQUEST };

const MEMBER_FILTER_ATTRIBUTES = ['value', 'display', 'type', '$ref'] as const;
const CORE_GROUP_PREFIX = `${GROUP_SCHEMA.toLowerCase()}:`;
const READ_ONLY = new Set(['id', 'meta', 'schemas']);

function keyIgnoringCase(obj: Json, name: string): string | undefined {
  const lower = name.toLowerCase();
  return Object.keys(obj).find((k) => k.toLowerCase() === lower);
}

function getIgnoringCase(obj: Json, name: string): unknown {
  const key = keyIgnoringCase(obj, name);
  return key === undefined ? undefined : obj[key];
}

/** `urn:ietf:params:scim:schemas:core:2.0:Group:displayName` → `displayname`. */
function attributeName(raw: string): string {
  const lower = raw.trim().toLowerCase();
  return lower.startsWith(CORE_GROUP_PREFIX) ? lower.slice(CORE_GROUP_PREFIX.length) : lower;
}

export function checkDisplayName(value: unknown, where = 'displayName'): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw badRequest('invalidValue', `${where} is required and must be a non-empty string`);
  }
  // A uniqueness key: kept in NFC, so that `é` typed as e + U+0301 names the same group.
  const name = value.normalize('NFC');
  const length = [...name].length;
  if (length > LIMITS.groupDisplayName) {
    throw badRequest(
      'invalidValue',
      `${where} is ${length} characters long; CloudIdentity accepts at most ${LIMITS.groupDisplayName}`,
    );
  }
  return name;
}

function checkExternalId(value: unknown, where = 'externalId'): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') throw badRequest('invalidValue', `${where} must be a string`);
  return value;
}

/**
 * `members` values → member SCIM ids. Accepts an array of `{value, display?, $ref?, type?}` (a single
 * object is taken as a one-element array: some clients send that); `"$ref": null` (Entra) is fine.
 */
export function memberIds(value: unknown, where = 'members'): string[] {
  if (value === undefined || value === null) return [];
  const items = Array.isArray(value) ? value : isPlainObject(value) ? [value] : undefined;
  if (!items) {
    throw badRequest('invalidValue', `${where} must be an array of objects like {"value": "<user id>"}`);
  }
  return items.map((item, i) => {
    if (!isPlainObject(item)) {
      throw badRequest('invalidValue', `${where}[${i}] must be an object like {"value": "<user id>"}`);
    }
    const id = getIgnoringCase(item, 'value');
    if (typeof id !== 'string' || id.trim() === '') {
      throw badRequest('invalidValue', `${where}[${i}].value must be a non-empty string (a User id)`);
    }
    const type = getIgnoringCase(item, 'type');
    if (type !== undefined && type !== null && typeof type === 'string' && type.toLowerCase() === 'group') {
      throw badRequest('invalidValue', `${where}[${i}]: nested groups are not supported by CloudIdentity`);
    }
    return id.trim();
  });
}

/** POST/PUT body → GroupInput. Unknown attributes are ignored, as for users; readOnly ones too. */
export function parseGroupBody(raw: unknown, limits: GroupInputLimits = DEFAULT_LIMITS): GroupInput {
  if (!isPlainObject(raw)) throw badRequest('invalidSyntax', 'request body must be a JSON object');
  const schemas = getIgnoringCase(raw, 'schemas');
  if (
    schemas !== undefined &&
    (!Array.isArray(schemas) ||
      !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === GROUP_SCHEMA.toLowerCase()))
  ) {
    throw badRequest('invalidSyntax', `schemas must be an array containing '${GROUP_SCHEMA}'`);
  }
  const id = getIgnoringCase(raw, 'id');
  const members = getIgnoringCase(raw, 'members');
  if (Array.isArray(members)) checkMemberCount(members.length, limits.maxMembers);
  const input: GroupInput = {
    displayName: checkDisplayName(getIgnoringCase(raw, 'displayName')),
    externalId: checkExternalId(getIgnoringCase(raw, 'externalId')),
    ...(members !== undefined ? { members: memberIds(members) } : {}),
    ...(typeof id === 'string' ? { id } : {}),
  };
  checkRecordSize('group', { displayName: input.displayName, externalId: input.externalId });
  return input;
}

const MEMBER_FILTER_PATH = /^members\s*\[(.*)\]\s*(\.\s*[\w$]+)?$/is;

/** The `members[…]` filter of a remove path: explicit ids when every OR-term is `value eq "…"`. */
function memberFilter(expression: string, where: string): MemberOperation {
  let filter: Filter;
  try {
    filter = parseFilter(expression, MEMBER_FILTER_ATTRIBUTES);
  } catch (e) {
    const err = e as ScimError;
    throw badRequest('invalidPath', `${where}: invalid members filter: ${err.detail ?? String(e)}`);
  }
  const ids: string[] = [];
  for (const term of filter) {
    const keys = Object.keys(term);
    const condition = term.value;
    if (
      keys.length === 1 &&
      Array.isArray(condition) &&
      condition[0] === 'eq' &&
      (typeof condition[1] === 'string' || typeof condition[1] === 'number')
    ) {
      ids.push(String(condition[1]));
    } else {
      return { kind: 'removeWhere', filter, expression };
    }
  }
  return { kind: 'remove', ids };
}

/**
 * Validates a PatchOp body for a group and turns it into a plan. IdP dialects handled: Entra's
 * capitalised ops (`Add`/`Replace`/`Remove`), `Add members` with `"$ref": null`, `Remove members`
 * with a value array (default) or `remove members[value eq "id"]` (aadOptscim062020); Okta's
 * remove-then-add in one request and its rename `replace {id, displayName}` (id ignored).
 */
export function parseGroupPatch(raw: unknown, limits: GroupInputLimits = DEFAULT_LIMITS): GroupPatch {
  if (!isPlainObject(raw)) throw badRequest('invalidSyntax', 'PATCH body must be a JSON object');
  const schemas = raw.schemas;
  if (!Array.isArray(schemas) || !schemas.includes('urn:ietf:params:scim:api:messages:2.0:PatchOp')) {
    throw badRequest(
      'invalidSyntax',
      "PATCH body schemas must be ['urn:ietf:params:scim:api:messages:2.0:PatchOp']",
    );
  }
  const operations = raw.Operations ?? raw.operations;
  if (!Array.isArray(operations) || operations.length === 0) {
    throw badRequest('invalidValue', "PATCH body must contain a non-empty 'Operations' array");
  }
  const plan: GroupPatch = { members: [] };
  for (const [index, operation] of operations.entries()) {
    applyOperation(plan, operation, `operation ${index + 1}`);
  }
  const named = plan.members.reduce((n, op) => n + ('ids' in op ? op.ids.length : 0), 0);
  checkMemberCount(named, limits.maxMembers);
  checkRecordSize('group', { displayName: plan.displayName, externalId: plan.externalId });
  return plan;
}

function applyOperation(plan: GroupPatch, rawOperation: unknown, where: string): void {
  if (!isPlainObject(rawOperation)) throw badRequest('invalidValue', `${where} must be an object`);
  const op = typeof rawOperation.op === 'string' ? rawOperation.op.toLowerCase() : undefined;
  if (op !== 'add' && op !== 'replace' && op !== 'remove') {
    // JSON.stringify, not String(): an op such as {"toString": null} would make String() throw.
    const shown = typeof rawOperation.op === 'string' ? rawOperation.op : JSON.stringify(rawOperation.op);
    throw badRequest('invalidSyntax', `${where}: unknown op '${shown}'`);
  }
  const rawPath = rawOperation.path;
  if (rawPath !== undefined && rawPath !== null && typeof rawPath !== 'string') {
    throw badRequest('invalidPath', `${where}: path must be a string`);
  }
  const path = typeof rawPath === 'string' && rawPath.trim() !== '' ? rawPath.trim() : undefined;
  const value = rawOperation.value;

  if (!path) {
    if (op === 'remove') throw badRequest('noTarget', `${where}: remove needs a path`);
    if (!isPlainObject(value)) {
      throw badRequest('invalidValue', `${where}: ${op} without a path needs an object value`);
    }
    for (const [key, v] of Object.entries(value)) {
      const name = attributeName(key);
      if (READ_ONLY.has(name)) continue; // Okta's rename carries the group id: ignored.
      applyAttribute(plan, op, name, v, key, `${where}: ${key}`);
    }
    return;
  }

  if (op !== 'remove' && value === undefined) {
    throw badRequest('invalidValue', `${where}: ${op} needs a value`);
  }
  const name = attributeName(path);
  if (name.startsWith('members[')) {
    const match = MEMBER_FILTER_PATH.exec(name);
    if (!match) throw badRequest('invalidPath', `${where}: cannot parse path '${path}'`);
    if (match[2]) {
      throw badRequest(
        'invalidPath',
        `${where}: path '${path}' targets a sub-attribute of members; members can only be added or removed`,
      );
    }
    if (op !== 'remove') {
      throw badRequest(
        'invalidPath',
        `${where}: '${op}' with a filtered members path is not supported; use add/remove on 'members'`,
      );
    }
    // Take the filter text from the original path: attribute values are case-sensitive ids.
    const original = /\[(.*)\]/s.exec(path)![1];
    plan.members.push(memberFilter(original, where));
    return;
  }
  if (op === 'remove' && (value === undefined || value === null)) {
    applyRemove(plan, name, path, where);
    return;
  }
  applyAttribute(plan, op, name, value, path, where);
}

function applyRemove(plan: GroupPatch, name: string, path: string, where: string): void {
  switch (name) {
    case 'members':
      plan.members.push({ kind: 'removeAll' });
      return;
    case 'externalid':
      plan.externalId = null;
      return;
    case 'displayname':
      throw badRequest('mutability', `${where}: displayName is required and cannot be removed`);
  }
  throw unknownPath(name, path, where);
}

function applyAttribute(
  plan: GroupPatch,
  op: 'add' | 'replace' | 'remove',
  name: string,
  value: unknown,
  path: string,
  where: string,
): void {
  switch (name) {
    case 'members': {
      const ids = memberIds(value, `${where} value`);
      if (op === 'add') plan.members.push({ kind: 'add', ids });
      else if (op === 'remove') plan.members.push({ kind: 'remove', ids });
      else plan.members.push({ kind: 'replace', ids });
      return;
    }
    case 'displayname':
      if (op === 'remove')
        throw badRequest('mutability', `${where}: displayName is required and cannot be removed`);
      plan.displayName = checkDisplayName(value, `${where}: displayName`);
      return;
    case 'externalid':
      plan.externalId = op === 'remove' ? null : checkExternalId(value, `${where}: externalId`);
      return;
  }
  throw unknownPath(name, path, where);
}

function unknownPath(name: string, path: string, where: string): ScimError {
  if (READ_ONLY.has(name.split('.')[0])) return badRequest('mutability', `${where}: '${path}' is read-only`);
  return badRequest(
    'invalidPath',
    `${where}: '${path}' is not a Group attribute that can be changed (displayName, externalId, members)`,
  );
}

/** Whether a response with these projection parameters includes `members` (else: no member reads). */
export function wantsMembers(attributes?: string[], excluded?: string[]): boolean {
  const top = (name: string) => attributeName(name).split('.')[0];
  if (attributes) return attributes.some((a) => top(a) === 'members');
  if (excluded) return !excluded.some((a) => attributeName(a) === 'members');
  return true;
}
