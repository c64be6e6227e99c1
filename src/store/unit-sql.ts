// One unit of work (BridgeStore.commit) as SQL both stores share: the statements of a unit in order,
// and how their rows become the CommitResult. No statement's parameters depend on an earlier one's
// rows, so the whole list is known before the first runs: SQLite runs it synchronously inside its
// transaction, PostgreSQL sends it in one pipelined batch and reads the answers in order.
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
 * One statement of a unit of work. `read`, when present, receives the statement's rows (it has
 * RETURNING) once it has run; it records the effect or throws StoreStaleError, which rolls the unit back.
 */
export interface UnitStep {
  sql: string;
  params: unknown[];
  read?: (rows: unknown[]) => void;
}

/** What differs between the stores in a unit's SQL. */
export interface UnitDialect {
  /** The current-time expression (updated_at). */
  now: string;
  /**
   * Inserts the subjects of the audit record inserted just before it in the same transaction:
   * $1 a JSON array of folded subjects (distinct).
   */
  insertAuditSubjects: string;
}

/**
 * SQLite's audit-subjects insert: the record just inserted is the audit table's highest id, since a
 * write transaction holds the only writer (AUTOINCREMENT ids only grow).
 */
export const SQLITE_AUDIT_SUBJECTS = `INSERT OR IGNORE INTO audit_subjects (audit_id, subject_lower)
  SELECT (SELECT max(id) FROM audit), value FROM json_each($1)`;

export function emptyCommitResult(): CommitResult {
  return { users: new Map(), groups: new Map(), intents: new Map() };
}

const fold = (v: unknown) => (typeof v === 'string' ? foldCase(v) : v);

/**
 * The statements of a unit, in order. Effects are recorded in `result` as each step's rows are read; an
 * update that finds its record missing or at another version throws StoreStaleError from its `read`
 * (the caller rolls the unit back).
 */
export function unitSteps(
  writes: readonly StoreWrite[],
  dialect: UnitDialect,
  result: CommitResult,
): UnitStep[] {
  const steps: UnitStep[] = [];
  for (const w of writes) {
    switch (w.op) {
      case 'insertUser': {
        const r = w.record;
        steps.push({
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
          read: (rows) => result.users.set(r.scimId, toUser(rows[0] as UserRow)),
        });
        break;
      }
      case 'updateUser':
        steps.push(
          updateRow('users', USER_ASSIGNMENTS, w, dialect, (row) =>
            result.users.set(w.scimId, toUser(row as UserRow)),
          ),
        );
        break;
      case 'deleteUser':
        steps.push(
          ...deleteRow('users', 'user_scim_id', w.scimId, () => result.users.set(w.scimId, 'deleted')),
        );
        break;
      case 'insertGroup': {
        const r = w.record;
        steps.push({
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
          read: (rows) => result.groups.set(r.scimId, toGroup(rows[0] as GroupRow)),
        });
        break;
      }
      case 'updateGroup':
        steps.push(
          updateRow('groups', GROUP_ASSIGNMENTS, w, dialect, (row) =>
            result.groups.set(w.scimId, toGroup(row as GroupRow)),
          ),
        );
        break;
      case 'deleteGroup':
        steps.push(
          ...deleteRow('groups', 'group_scim_id', w.scimId, () => result.groups.set(w.scimId, 'deleted')),
        );
        break;
      case 'addMembership':
        steps.push({
          sql: 'INSERT INTO memberships (group_scim_id, user_scim_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
          params: [w.groupScimId, w.userScimId],
        });
        break;
      case 'removeMembership':
        steps.push({
          sql: 'DELETE FROM memberships WHERE group_scim_id = $1 AND user_scim_id = $2',
          params: [w.groupScimId, w.userScimId],
        });
        break;
      case 'putIntent': {
        const i = w.intent;
        steps.push({
          sql: `INSERT INTO intents (id, resource, kind, payload) VALUES ($1, $2, $3, $4) RETURNING ${INTENT_COLUMNS}`,
          params: [i.id, i.resource, i.kind, json(i.payload)],
          read: (rows) => result.intents.set(i.id, toIntent(rows[0] as IntentRow)),
        });
        break;
      }
      case 'clearIntent':
        steps.push({ sql: 'DELETE FROM intents WHERE id = $1', params: [w.id] });
        break;
      case 'appendAudit': {
        if (w.replacesStart && w.entry.requestId !== null) {
          // A request's final record replaces the record of its start (status 102) in the same
          // transaction: one record per request; a start whose request never finished (a crash)
          // keeps its record, and the reconciler's settle is recorded beside it.
          steps.push({ sql: DELETE_STARTED_SUBJECTS, params: [w.entry.requestId] });
          steps.push({ sql: DELETE_STARTED, params: [w.entry.requestId] });
        }
        steps.push({ sql: INSERT_AUDIT, params: auditInsertParams(w.entry) });
        const subjects = auditSubjects(w.entry);
        if (subjects.length > 0) steps.push({ sql: dialect.insertAuditSubjects, params: [json(subjects)] });
        break;
      }
      default: {
        const unknown: never = w;
        throw new TypeError(`unknown store write ${(unknown as { op?: unknown }).op}`);
      }
    }
  }
  return steps;
}

/** The whitelisted UPDATE of one user or group; `read` gets its row as updated, or StoreStaleError is thrown. */
function updateRow<C extends object>(
  table: 'users' | 'groups',
  assignments: Parameters<typeof buildUpdate<C>>[1],
  w: { scimId: string; changes: C; expectedVersion?: number },
  dialect: UnitDialect,
  read: (row: unknown) => void,
): UnitStep {
  const { sql, params } = buildUpdate(
    table,
    assignments,
    w.scimId,
    w.changes,
    w.expectedVersion,
    dialect.now,
  );
  return {
    sql,
    params,
    read: (rows) => {
      if (rows.length === 0) throw new StoreStaleError(w.scimId);
      read(rows[0]);
    },
  };
}

/** Deletes one user or group with its memberships; `deleted` runs when a row was there. */
function deleteRow(
  table: 'users' | 'groups',
  membershipColumn: 'user_scim_id' | 'group_scim_id',
  scimId: string,
  deleted: () => void,
): UnitStep[] {
  return [
    { sql: `DELETE FROM memberships WHERE ${membershipColumn} = $1`, params: [scimId] },
    {
      sql: `DELETE FROM ${table} WHERE scim_id = $1 RETURNING scim_id`,
      params: [scimId],
      read: (rows) => {
        if (rows.length > 0) deleted();
      },
    },
  ];
}

/** The status of the record of an operation begun (audit/entry.ts). */
const STARTED = 102;

const DELETE_STARTED = `DELETE FROM audit WHERE request_id = $1 AND status = ${STARTED}`;
const DELETE_STARTED_SUBJECTS = `DELETE FROM audit_subjects WHERE audit_id IN
  (SELECT id FROM audit WHERE request_id = $1 AND status = ${STARTED})`;
