// One unit of work (BridgeStore.commit) as SQL both stores share: the statements of a unit in order,
// and how their rows become the CommitResult. SQLite drives the generator synchronously inside its
// transaction, PostgreSQL awaits each statement on the transaction's connection.
import { auditInsertParams, auditSubjects, INSERT_AUDIT } from './audit-sql.js';
import { foldCase } from './fold-case.js';
import {
  buildUpdate,
  GROUP_ASSIGNMENTS,
  GROUP_COLUMNS,
  type GroupRow,
  INTENT_COLUMNS,
  type IntentRow,
  json,
  toGroup,
  toIntent,
  toUser,
  USER_ASSIGNMENTS,
  USER_COLUMNS,
  type UserRow,
} from './sql-common.js';
import { type CommitResult, StoreStaleError, type StoreWrite } from './types.js';

/**
 * One statement of a unit of work. `rows`: the statement has RETURNING and its rows are read;
 * otherwise it runs for its effect.
 */
export interface UnitStep {
  sql: string;
  params: unknown[];
  rows: boolean;
}

/** What differs between the stores in a unit's SQL. */
export interface UnitDialect {
  /** The current-time expression (updated_at). */
  now: string;
  /** Inserts audit subjects: $1 the audit id, $2 a JSON array of folded subjects (distinct). */
  insertAuditSubjects: string;
}

export function emptyCommitResult(): CommitResult {
  return { users: new Map(), groups: new Map(), intents: new Map() };
}

const fold = (v: unknown) => (typeof v === 'string' ? foldCase(v) : v);

/**
 * The statements of a unit, in order, as a generator both stores drive: SQLite synchronously, PostgreSQL
 * awaiting each statement on the transaction's connection. Each step receives the rows of the previous
 * one. Effects are recorded in `result`; an update that finds its record missing or at another version
 * throws StoreStaleError (the caller rolls the unit back).
 */
export function* unitSteps(
  writes: readonly StoreWrite[],
  dialect: UnitDialect,
  result: CommitResult,
): Generator<UnitStep, void, unknown[]> {
  for (const w of writes) {
    switch (w.op) {
      case 'insertUser': {
        const r = w.record;
        const rows = yield {
          sql: `INSERT INTO users (scim_id, upstream_user_id, user_name, user_name_lower, external_id, active, state,
           attributes, tombstone_group_ids)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING ${USER_COLUMNS}`,
          params: [
            r.scimId,
            r.upstreamUserId,
            r.userName,
            fold(r.userName),
            r.externalId,
            r.active,
            r.state,
            json(r.attributes),
            json(r.tombstoneGroupIds),
          ],
          rows: true,
        };
        result.users.set(r.scimId, toUser(rows[0] as UserRow));
        break;
      }
      case 'updateUser': {
        const row = yield* updateRow('users', USER_ASSIGNMENTS, w, dialect);
        result.users.set(w.scimId, toUser(row as UserRow));
        break;
      }
      case 'deleteUser':
        if (yield* deleteRow('users', 'user_scim_id', w.scimId)) result.users.set(w.scimId, 'deleted');
        break;
      case 'insertGroup': {
        const r = w.record;
        const rows = yield {
          sql: `INSERT INTO groups (scim_id, group_name, display_name, display_name_lower, external_id, attributes)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING ${GROUP_COLUMNS}`,
          params: [
            r.scimId,
            r.groupName,
            r.displayName,
            fold(r.displayName),
            r.externalId,
            json(r.attributes),
          ],
          rows: true,
        };
        result.groups.set(r.scimId, toGroup(rows[0] as GroupRow));
        break;
      }
      case 'updateGroup': {
        const row = yield* updateRow('groups', GROUP_ASSIGNMENTS, w, dialect);
        result.groups.set(w.scimId, toGroup(row as GroupRow));
        break;
      }
      case 'deleteGroup':
        if (yield* deleteRow('groups', 'group_scim_id', w.scimId)) result.groups.set(w.scimId, 'deleted');
        break;
      case 'addMembership':
        yield {
          sql: 'INSERT INTO memberships (group_scim_id, user_scim_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
          params: [w.groupScimId, w.userScimId],
          rows: false,
        };
        break;
      case 'removeMembership':
        yield {
          sql: 'DELETE FROM memberships WHERE group_scim_id = $1 AND user_scim_id = $2',
          params: [w.groupScimId, w.userScimId],
          rows: false,
        };
        break;
      case 'putIntent': {
        const i = w.intent;
        const rows = yield {
          sql: `INSERT INTO intents (id, resource, kind, payload) VALUES ($1, $2, $3, $4) RETURNING ${INTENT_COLUMNS}`,
          params: [i.id, i.resource, i.kind, json(i.payload)],
          rows: true,
        };
        result.intents.set(i.id, toIntent(rows[0] as IntentRow));
        break;
      }
      case 'clearIntent':
        yield { sql: 'DELETE FROM intents WHERE id = $1', params: [w.id], rows: false };
        break;
      case 'appendAudit': {
        if (w.replacesStart && w.entry.requestId !== null) {
          // A request's final record replaces the record of its start (status 102) in the same
          // transaction: one record per request; a start whose request never finished (a crash)
          // keeps its record, and the reconciler's settle is recorded beside it.
          yield { sql: DELETE_STARTED_SUBJECTS, params: [w.entry.requestId], rows: false };
          yield { sql: DELETE_STARTED, params: [w.entry.requestId], rows: false };
        }
        const rows = yield {
          sql: `${INSERT_AUDIT} RETURNING id`,
          params: auditInsertParams(w.entry),
          rows: true,
        };
        const subjects = auditSubjects(w.entry);
        if (subjects.length > 0) {
          yield {
            sql: dialect.insertAuditSubjects,
            params: [(rows[0] as { id: number | string }).id, json(subjects)],
            rows: false,
          };
        }
        break;
      }
      default: {
        const unknown: never = w;
        throw new TypeError(`unknown store write ${(unknown as { op?: unknown }).op}`);
      }
    }
  }
}

/** The whitelisted UPDATE of one user or group: its row as updated, or StoreStaleError. */
function* updateRow<C extends object>(
  table: 'users' | 'groups',
  assignments: Parameters<typeof buildUpdate<C>>[1],
  w: { scimId: string; changes: C; expectedVersion?: number },
  dialect: UnitDialect,
): Generator<UnitStep, unknown, unknown[]> {
  const { sql, params } = buildUpdate(
    table,
    assignments,
    w.scimId,
    w.changes,
    w.expectedVersion,
    dialect.now,
  );
  const rows = yield { sql, params, rows: true };
  if (rows.length === 0) throw new StoreStaleError(w.scimId);
  return rows[0];
}

/** Deletes one user or group with its memberships; whether a row was there. */
function* deleteRow(
  table: 'users' | 'groups',
  membershipColumn: 'user_scim_id' | 'group_scim_id',
  scimId: string,
): Generator<UnitStep, boolean, unknown[]> {
  yield { sql: `DELETE FROM memberships WHERE ${membershipColumn} = $1`, params: [scimId], rows: false };
  const rows = yield {
    sql: `DELETE FROM ${table} WHERE scim_id = $1 RETURNING scim_id`,
    params: [scimId],
    rows: true,
  };
  return rows.length > 0;
}

/**
 * Whether the unit is one statement (PostgreSQL runs it without BEGIN/COMMIT: a single statement is
 * its own transaction and commits before the server answers it).
 */
export function isSingleStatement(writes: readonly StoreWrite[]): boolean {
  if (writes.length !== 1) return false;
  const w = writes[0];
  if (w.op === 'deleteUser' || w.op === 'deleteGroup') return false;
  if (w.op === 'appendAudit') return auditSubjects(w.entry).length === 0 && !w.replacesStart;
  return true;
}

/** The status of the record of an operation begun (audit/entry.ts). */
const STARTED = 102;

const DELETE_STARTED = `DELETE FROM audit WHERE request_id = $1 AND status = ${STARTED}`;
const DELETE_STARTED_SUBJECTS = `DELETE FROM audit_subjects WHERE audit_id IN
  (SELECT id FROM audit WHERE request_id = $1 AND status = ${STARTED})`;
