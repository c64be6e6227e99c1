// The audit table's SQL, shared by both stores (same columns; `$n` placeholders). PostgreSQL holds
// `at` as timestamptz and the JSON as jsonb; SQLite as ISO text (which sorts like the time) and TEXT.
import type { AuditActivityRow, AuditActor, AuditEntry, AuditQuery, AuditRecord } from './audit-types.js';
import { foldCase } from './fold-case.js';
import { json } from './sql-common.js';

export const AUDIT_COLUMNS =
  'id, at, actor, client_ip, request_id, method, resource_type, resource_id, resource_name, status, scim_type, detail, duration_ms, changes, upstream';

export interface AuditRow {
  /** bigint: a string from pg, a number from SQLite */
  id: string | number;
  at: Date | string;
  actor: string;
  client_ip: string | null;
  request_id: string | null;
  method: string;
  resource_type: AuditRecord['resourceType'];
  resource_id: string | null;
  resource_name: string | null;
  status: number;
  scim_type: string | null;
  detail: string | null;
  duration_ms: number;
  changes: AuditRecord['changes'] | string;
  upstream: AuditRecord['upstream'] | string;
}

const iso = (v: Date | string) => (v instanceof Date ? v : new Date(v)).toISOString();
const parsed = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

export function toAuditRecord(row: AuditRow): AuditRecord {
  return {
    id: String(row.id),
    at: iso(row.at),
    actor: row.actor,
    clientIp: row.client_ip,
    requestId: row.request_id,
    method: row.method,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    resourceName: row.resource_name,
    status: row.status,
    scimType: row.scim_type,
    detail: row.detail,
    durationMs: Number(row.duration_ms),
    changes: parsed(row.changes),
    upstream: parsed(row.upstream),
  };
}

export const INSERT_AUDIT = `INSERT INTO audit (at, actor, client_ip, request_id, method, resource_type, resource_id,
  resource_name, resource_name_lower, status, scim_type, detail, duration_ms, changes, upstream)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`;

export function auditInsertParams(e: AuditEntry): unknown[] {
  return [
    e.at,
    e.actor,
    e.clientIp,
    e.requestId,
    e.method,
    e.resourceType,
    e.resourceId,
    e.resourceName,
    e.resourceName === null ? null : foldCase(e.resourceName),
    e.status,
    e.scimType,
    e.detail,
    e.durationMs,
    json(e.changes),
    json(e.upstream),
  ];
}

/**
 * SELECT for one page of listAudit (ids grow with insertion: newest first is id DESC).
 * `unindexedTime` (SQLite only: `+at`) keeps the planner off the time index when the caller bounds
 * the ids itself: a wide time range through that index is a scan and a sort of the whole range.
 */
export function auditListSql(
  q: AuditQuery,
  options: { unindexedTime?: boolean } = {},
): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const where: string[] = [];
  const add = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (q.resource !== undefined) {
    where.push(`(resource_id = ${add(q.resource)} OR resource_name_lower = ${add(foldCase(q.resource))})`);
  }
  if (q.actor !== undefined) where.push(`actor = ${add(q.actor)}`);
  const at = options.unindexedTime ? '+at' : 'at';
  if (q.since !== undefined) where.push(`${at} >= ${add(q.since)}`);
  if (q.until !== undefined) where.push(`${at} < ${add(q.until)}`);
  if (q.outcome === 'error') where.push('status >= 400');
  if (q.outcome === 'ok') where.push('status < 400');
  if (q.beforeId !== undefined) where.push(`id < ${add(Number(q.beforeId))}`);
  if (q.afterId !== undefined) where.push(`id > ${add(Number(q.afterId))}`);
  const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  const order = q.order === 'asc' ? 'ASC' : 'DESC';
  return {
    sql: `SELECT ${AUDIT_COLUMNS} FROM audit ${clause} ORDER BY id ${order} LIMIT ${add(q.limit)}`,
    params,
  };
}

/** The newest records at or after $1 through the time index (a range of at most $2 entries). */
export const AUDIT_ACTIVITY =
  'SELECT at, status, duration_ms FROM audit WHERE at >= $1 ORDER BY at DESC LIMIT $2';

/** AUDIT_ACTIVITY in pages (SQLite): the page after the row at ($2, id $3), newest first. */
export const AUDIT_ACTIVITY_PAGE = `SELECT id, at, status, duration_ms FROM audit
  WHERE at >= $1 AND (at, id) < ($2, $3) ORDER BY at DESC, id DESC LIMIT $4`;

export function toActivityRow(row: {
  at: Date | string;
  status: number;
  duration_ms: number;
}): AuditActivityRow {
  return { at: iso(row.at), status: row.status, durationMs: Number(row.duration_ms) };
}

/** From the counters the audit table's triggers keep (migration 11): a few rows per actor. */
export const AUDIT_ACTORS = `SELECT actor, max(last_at) AS last_at, sum(writes) AS writes, sum(errors) AS errors
  FROM audit_actors GROUP BY actor ORDER BY last_at DESC LIMIT $1`;

export function toAuditActor(row: {
  actor: string;
  last_at: Date | string;
  writes: number | string;
  errors: number | string;
}): AuditActor {
  return {
    actor: row.actor,
    lastAt: iso(row.last_at),
    writes: Number(row.writes),
    errors: Number(row.errors),
  };
}

/**
 * Oldest first, bounded: a long backlog is pruned in many short statements, never one long lock.
 * In time order, so the batch is a range of the time index: in id order the planner walks the
 * whole trail looking for old records, even when there are none (seconds at a million records,
 * on the embedded store's event loop, at every retention pass).
 */
export const PRUNE_AUDIT =
  'DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 ORDER BY at LIMIT $2)';

// Console sessions signed out before their expiry (admin/session.ts); expired ones are pruned as
// sessions are revoked, so the table holds at most the sign-outs of one session lifetime.
export const REVOKE_ADMIN_SESSION =
  'INSERT INTO admin_revoked_sessions (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING';
export const PRUNE_ADMIN_SESSIONS = 'DELETE FROM admin_revoked_sessions WHERE expires_at <= $1';
export const ADMIN_SESSION_REVOKED = 'SELECT 1 AS revoked FROM admin_revoked_sessions WHERE nonce = $1';
