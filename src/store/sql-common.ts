// What the two SQL stores share: PostgreSQL (sql-store.ts) and SQLite (sqlite-store.ts) have the
// same tables and columns, and agree on `$n` placeholders, UPDATE … RETURNING and the row shapes.
// Only the value encodings differ (PostgreSQL jsonb/boolean/timestamptz, SQLite TEXT/0-1/ISO text),
// and toUser/toGroup accept both.
import { foldCase } from './fold-case.js';
import type {
  GroupChanges,
  GroupRecord,
  IntentRecord,
  JsonObject,
  UserChanges,
  UserQuery,
  UserRecord,
  UserWithGroups,
} from './types.js';

// Explicit column lists (never *): user_name_lower and display_name_lower stay in the database.
export const USER_COLUMNS =
  'scim_id, upstream_user_id, user_name, external_id, active, state, attributes, tombstone_group_ids, version, created_at, updated_at';
/**
 * A user and its memberships, one row per group (one with null group columns when it has none):
 * the user's columns, then group_scim_id and group_display_name.
 */
export const USER_WITH_GROUPS = `SELECT ${USER_COLUMNS.split(', ')
  .map((c) => `u.${c}`)
  .join(', ')}, m.group_scim_id, g.display_name AS group_display_name
  FROM users u LEFT JOIN memberships m ON m.user_scim_id = u.scim_id
  LEFT JOIN groups g ON g.scim_id = m.group_scim_id
  WHERE u.scim_id = $1 ORDER BY m.group_scim_id`;

export type UserWithGroupsRow = UserRow & { group_scim_id: string | null; group_display_name: string | null };

/** USER_WITH_GROUPS's rows → the record and its groups; null for no rows. */
export function toUserWithGroups(rows: UserWithGroupsRow[]): UserWithGroups | null {
  if (rows.length === 0) return null;
  const groups: UserWithGroups['groups'] = [];
  for (const row of rows) {
    if (row.group_scim_id !== null)
      groups.push({ scimId: row.group_scim_id, displayName: row.group_display_name });
  }
  return { record: toUser(rows[0]), groups };
}

/** Records made of `rows`, by the key each row gives (for the by-ids getters of both stores). */
export function keyedBy<Row, R>(
  rows: Row[],
  keyOf: (row: Row) => string,
  toRecord: (row: Row) => R,
): Map<string, R> {
  const byKey = new Map<string, R>();
  for (const row of rows) byKey.set(keyOf(row), toRecord(row));
  return byKey;
}

export const GROUP_COLUMNS =
  'scim_id, group_name, display_name, external_id, attributes, version, created_at, updated_at';

export const INTENT_COLUMNS =
  'id, resource, kind, payload, created_at, attempts, next_attempt_at, last_error';

/** pg returns Date for timestamptz; SQLite holds ISO-8601 text with milliseconds. */
type Timestamp = Date | string;
/** pg parses jsonb; SQLite returns the TEXT. */
type Json<T> = T | string;

export interface UserRow {
  scim_id: string;
  upstream_user_id: string | null;
  user_name: string;
  external_id: string | null;
  /** boolean from pg, 0/1 from SQLite */
  active: boolean | number;
  state: UserRecord['state'];
  attributes: Json<JsonObject>;
  tombstone_group_ids: Json<string[]>;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface GroupRow {
  scim_id: string;
  group_name: string;
  display_name: string;
  external_id: string | null;
  attributes: Json<JsonObject>;
  version: number;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** What toISOString gives: SQLite's timestamps are stored in this form already. */
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/**
 * A timestamp as toISOString writes it. SQLite's text is returned as it is when already in that
 * form: parsing and formatting it again costs 1–2 µs a value, two per row read.
 */
export function iso(value: Timestamp): string {
  if (typeof value === 'string' && ISO_TIME.test(value)) return value;
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

function parsed<T>(value: Json<T>): T {
  return typeof value === 'string' ? (JSON.parse(value) as T) : value;
}

export function toUser(row: UserRow): UserRecord {
  return {
    scimId: row.scim_id,
    upstreamUserId: row.upstream_user_id,
    userName: row.user_name,
    externalId: row.external_id,
    active: row.active === true || row.active === 1,
    state: row.state,
    attributes: parsed(row.attributes),
    tombstoneGroupIds: parsed(row.tombstone_group_ids),
    version: row.version,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

export function toGroup(row: GroupRow): GroupRecord {
  return {
    scimId: row.scim_id,
    groupName: row.group_name,
    displayName: row.display_name,
    externalId: row.external_id,
    attributes: parsed(row.attributes),
    version: row.version,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

/**
 * JSON columns get JSON text: pg would turn a JS array into a PostgreSQL array literal, which jsonb
 * rejects, and SQLite stores the text as it is.
 */
export function json(value: unknown): string {
  return JSON.stringify(value);
}

/** For each updatable field: the column assignments it produces (userName also writes its folded form). */
type Assignments<C> = {
  [K in keyof C]-?: (
    value: Exclude<C[K], undefined>,
  ) => ReadonlyArray<readonly [column: string, value: unknown]>;
};

export const USER_ASSIGNMENTS: Assignments<UserChanges> = {
  upstreamUserId: (v) => [['upstream_user_id', v]],
  userName: (v) => [
    ['user_name', v],
    ['user_name_lower', foldCase(v)],
  ],
  externalId: (v) => [['external_id', v]],
  active: (v) => [['active', v]],
  state: (v) => [['state', v]],
  attributes: (v) => [['attributes', json(v)]],
  tombstoneGroupIds: (v) => [['tombstone_group_ids', json(v)]],
};

export const GROUP_ASSIGNMENTS: Assignments<GroupChanges> = {
  groupName: (v) => [['group_name', v]],
  displayName: (v) => [
    ['display_name', v],
    ['display_name_lower', foldCase(v)],
  ],
  externalId: (v) => [['external_id', v]],
  attributes: (v) => [['attributes', json(v)]],
};

/**
 * One compare-and-set UPDATE: the version check and the write are a single statement, so two
 * writers updating with the same expectedVersion cannot both succeed (the second re-checks the
 * WHERE clause against the committed row and matches nothing). Iterates the known fields, not the
 * keys of `changes`, so only whitelisted column names ever reach the SQL text; undefined means
 * "leave as is", null writes NULL. `now` is the dialect's current-time expression.
 */
export function buildUpdate<C extends object>(
  table: 'users' | 'groups',
  assignments: Assignments<C>,
  scimId: string,
  changes: C,
  expectedVersion: number | undefined,
  now: string,
): { sql: string; params: unknown[] } {
  const params: unknown[] = [scimId];
  const sets: string[] = [];
  for (const key of Object.keys(assignments) as Array<keyof C>) {
    const value = changes[key];
    if (value === undefined) continue;
    for (const [column, param] of assignments[key](value as Exclude<C[keyof C], undefined>)) {
      params.push(param);
      sets.push(`${column} = $${params.length}`);
    }
  }
  sets.push('version = version + 1', `updated_at = ${now}`);
  let where = 'scim_id = $1';
  if (expectedVersion !== undefined) {
    params.push(expectedVersion);
    where += ` AND version = $${params.length}`;
  }
  const returning = table === 'users' ? USER_COLUMNS : GROUP_COLUMNS;
  return { sql: `UPDATE ${table} SET ${sets.join(', ')} WHERE ${where} RETURNING ${returning}`, params };
}

/** WHERE clause for a UserQuery; detached: false selects the users that do have an upstream user. */
export function userFilter(query: UserQuery, params: unknown[]): string {
  const conditions: string[] = [];
  if (query.active !== undefined) {
    params.push(query.active);
    conditions.push(`active = $${params.length}`);
  }
  if (query.detached !== undefined) {
    conditions.push(query.detached ? 'upstream_user_id IS NULL' : 'upstream_user_id IS NOT NULL');
  }
  if (query.state !== undefined) {
    params.push(query.state);
    conditions.push(`state = $${params.length}`);
  }
  return conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
}

/** Appends one user's ids to memberships-by-user (rows ordered by group id). */
export function groupByUser(
  rows: Array<{ user_scim_id: string; group_scim_id: string }>,
): Map<string, string[]> {
  const result = new Map<string, string[]>();
  for (const row of rows) {
    const list = result.get(row.user_scim_id) ?? [];
    list.push(row.group_scim_id);
    result.set(row.user_scim_id, list);
  }
  return result;
}

export interface IntentRow {
  id: string;
  resource: string;
  kind: string;
  payload: Json<JsonObject>;
  created_at: Timestamp;
  attempts: number;
  next_attempt_at: Timestamp;
  last_error: string | null;
}

export function toIntent(row: IntentRow): IntentRecord {
  return {
    id: row.id,
    resource: row.resource,
    kind: row.kind,
    payload: parsed(row.payload),
    createdAt: iso(row.created_at),
    attempts: row.attempts,
    nextAttemptAt: iso(row.next_attempt_at),
    lastError: row.last_error,
  };
}

/** Group ids known to the store: records and membership-mirror rows (foreign groups have no record). */
export const GROUP_IDS_AFTER = `SELECT scim_id FROM (
    SELECT scim_id FROM groups WHERE scim_id > $1
    UNION SELECT group_scim_id AS scim_id FROM memberships WHERE group_scim_id > $1
  ) ids ORDER BY scim_id LIMIT $2`;

/** last_error is kept short: an error message, never a payload. */
export function shortError(error: string): string {
  return error.length > 500 ? `${error.slice(0, 497)}...` : error;
}
