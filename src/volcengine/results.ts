// Result shaping: checks the Result of a successful answer and gives it the declared types. Anything
// the bridge relies on that is missing or of the wrong kind is a malformed answer (never retried).
import { isRecord } from './envelope.js';
import { VolcengineTransportError } from './errors.js';
import type { CloudIdentityGroup, CloudIdentityGroupMember, CloudIdentityUser } from './types.js';

// The text fields of what CloudIdentity returns. JSON gives no guarantee of their types: a number
// (a numeric UserName, an id) is read as its text, null as absent; anything else is malformed. The
// rest of the bridge can then rely on the declared types (a userName is always a string in SCIM).
const PERSON_TEXT = [
  'UserId',
  'UserName',
  'DisplayName',
  'Description',
  'Email',
  'Phone',
  'Source',
  'IdentityType',
] as const;
const USER_TEXT = [...PERSON_TEXT, 'CreatedTime', 'UpdatedTime'] as const;
const MEMBER_TEXT = [...PERSON_TEXT, 'JoinTime'] as const;
const GROUP_TEXT = [
  'GroupId',
  'GroupName',
  'DisplayName',
  'Description',
  'JoinType',
  'Source',
  'CreatedTime',
  'UpdatedTime',
] as const;

function textFields(
  action: string,
  r: Record<string, unknown>,
  keys: readonly string[],
  where: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...r };
  for (const key of keys) {
    const v = r[key];
    if (v === undefined || typeof v === 'string') continue;
    if (v === null) delete out[key];
    else if (typeof v === 'number' || typeof v === 'boolean') out[key] = String(v);
    else throw resultError(action, `${where}.${key} is not text`);
  }
  return out;
}

function resultError(action: string, why: string): VolcengineTransportError {
  return new VolcengineTransportError(action, 'malformed', why, 200);
}

/** A user (CreateUser, GetUser, an item of ListUsers) with its UserId. */
export function shapeUser(action: string, r: Record<string, unknown>, where = 'Result'): CloudIdentityUser {
  const u = textFields(action, r, USER_TEXT, where);
  if (typeof u.UserId !== 'string' || !u.UserId) throw resultError(action, `${where}.UserId is missing`);
  return u as unknown as CloudIdentityUser;
}

/** A group (CreateGroup, GetGroup, an item of ListGroups) with its GroupId. */
export function shapeGroup(action: string, r: Record<string, unknown>, where = 'Result'): CloudIdentityGroup {
  const g = textFields(action, r, GROUP_TEXT, where);
  if (typeof g.GroupId !== 'string' || !g.GroupId) throw resultError(action, `${where}.GroupId is missing`);
  return g as unknown as CloudIdentityGroup;
}

/** An item of ListGroupMembers, with its UserId. */
export function shapeMember(
  action: string,
  m: Record<string, unknown>,
  where: string,
): CloudIdentityGroupMember {
  const member = textFields(action, m, MEMBER_TEXT, where);
  if (typeof member.UserId !== 'string' || !member.UserId)
    throw resultError(action, `${where}.UserId is missing`);
  return member as unknown as CloudIdentityGroupMember;
}

/** The items of a list answer (`Result[key]`), each shaped. */
export function shapeList<T>(
  action: string,
  r: Record<string, unknown>,
  key: string,
  shape: (item: Record<string, unknown>, where: string) => T,
): T[] {
  const items = r[key];
  // An empty page may come back as null or without the member at all.
  if (items === undefined || items === null) return [];
  if (!Array.isArray(items)) throw resultError(action, `Result.${key} is not an array`);
  return items.map((item, i) => {
    const where = `Result.${key}[${i}]`;
    if (!isRecord(item)) throw resultError(action, `${where} is not an object`);
    return shape(item, where);
  });
}

/** The paging fields of a list answer; what is missing or not a number falls back to the request's. */
export function shapePage(
  r: Record<string, unknown>,
  input: { PageNumber?: number; PageSize?: number },
  key: string,
): { PageNumber: number; PageSize: number; Total: number } {
  const num = (v: unknown, fallback: number): number => {
    const n = typeof v === 'string' ? Number(v) : v;
    return typeof n === 'number' && Number.isFinite(n) ? n : fallback;
  };
  const count = Array.isArray(r[key]) ? (r[key] as unknown[]).length : 0;
  return {
    PageNumber: num(r.PageNumber, input.PageNumber ?? 1),
    PageSize: num(r.PageSize, input.PageSize ?? 10),
    Total: num(r.Total, count),
  };
}
