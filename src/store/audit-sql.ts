// The audit table's SQL, shared by both stores (same columns; `$n` placeholders). PostgreSQL holds
// `at` as timestamptz and the JSON as jsonb; SQLite as ISO text (which sorts like the time) and TEXT.
import type {
  AuditActor,
  AuditEntry,
  AuditOutcomeKind,
  AuditQuery,
  AuditRecord,
  AuditTallyRow,
} from './audit-types.js';
import { foldCase } from './fold-case.js';
import { iso, json } from './sql-common.js';

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

// Every audit field is bounded here, at the store boundary, whatever the caller passes: a refused
// request can carry a megabyte-long name, and records are kept for months.

/** The longest name CloudIdentity accepts (userName 54, displayName and group DisplayName 64 characters). */
export const AUDIT_NAME_CHARS = 64;
/** Short fields: actor, method, request id, client IP, resource id, scimType. */
export const AUDIT_SHORT_CHARS = 256;
export const AUDIT_DETAIL_CHARS = 2_000;
/** Every string inside `changes` and `upstream` (field values, member names). */
export const AUDIT_VALUE_CHARS = 512;
/** `changes` as JSON (a membership change of 1,000 members with their names fits). */
export const AUDIT_CHANGES_CHARS = 256 * 1024;
/** Upstream calls listed per record; the rest are summarised in one last entry. */
export const AUDIT_UPSTREAM_CALLS = 200;
/** Subjects (other resources a record concerns) kept per record. */
export const AUDIT_SUBJECTS = 4_000;

/**
 * `value` cut to at most `max` characters (code points, never half a surrogate pair) plus a marker
 * that says how long it was (in UTF-16 units, as JavaScript counts); shorter values unchanged.
 * Looks at no more than the part it keeps: a megabyte-long value costs no more than a short one.
 */
export function bounded(value: string, max: number): string {
  if (value.length <= max) return value;
  let end = 0;
  for (let points = 0; points < max && end < value.length; points++) {
    const code = value.charCodeAt(end);
    end += code >= 0xd800 && code <= 0xdbff && end + 1 < value.length ? 2 : 1;
  }
  if (end >= value.length) return value;
  return `${value.slice(0, end)}…(${value.length} characters)`;
}

function boundedOrNull(value: string | null | undefined, max: number): string | null {
  return typeof value === 'string' ? bounded(value, max) : (value ?? null);
}

/** Every string in a JSON value cut to AUDIT_VALUE_CHARS (keys too). */
function boundStrings(value: unknown): unknown {
  if (typeof value === 'string') return bounded(value, AUDIT_VALUE_CHARS);
  if (Array.isArray(value)) return value.map(boundStrings);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[bounded(k, AUDIT_VALUE_CHARS)] = boundStrings(v);
    return out;
  }
  return value;
}

/** Arrays anywhere in `value` cut to their first `keep` elements; counts what was dropped. */
function cutArrays(value: unknown, keep: number, dropped: { n: number }): unknown {
  if (Array.isArray(value)) {
    if (value.length > keep) dropped.n += value.length - keep;
    return value.slice(0, keep).map((v) => cutArrays(v, keep, dropped));
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = cutArrays(v, keep, dropped);
    return out;
  }
  return value;
}

/**
 * `changes` as JSON of at most AUDIT_CHANGES_CHARS: strings cut, then lists shortened (same element
 * shape, so readers need not know) with a note saying how many entries were left out.
 */
export function boundedChangesJson(changes: AuditEntry['changes']): string {
  const cut = boundStrings(changes ?? {}) as Record<string, unknown>;
  let text = json(cut);
  if (text.length <= AUDIT_CHANGES_CHARS) return text;
  let keep = 1024;
  for (;;) {
    const dropped = { n: 0 };
    const shorter = cutArrays(cut, keep, dropped) as Record<string, unknown>;
    const note = `lists cut: ${dropped.n} entries not kept`;
    shorter.note = typeof shorter.note === 'string' ? `${shorter.note}; ${note}` : note;
    text = json(shorter);
    if (text.length <= AUDIT_CHANGES_CHARS) return text;
    if (keep === 0) return json({ note: `changes too large to keep (${text.length} characters)` });
    keep = Math.floor(keep / 2);
  }
}

/** At most AUDIT_UPSTREAM_CALLS calls; the rest are counted in one last entry. */
export function boundedUpstream(upstream: AuditEntry['upstream']): AuditEntry['upstream'] {
  const calls = (upstream ?? []).map((c) => boundStrings(c) as AuditEntry['upstream'][number]);
  if (calls.length <= AUDIT_UPSTREAM_CALLS) return calls;
  const kept = calls.slice(0, AUDIT_UPSTREAM_CALLS - 1);
  kept.push({ action: '…', outcome: `${calls.length - kept.length} more calls not listed` });
  return kept;
}

/** The record's subjects as stored: folded, distinct, bounded, without the record's own id and name. */
export function auditSubjects(e: AuditEntry): string[] {
  if (!e.subjects || e.subjects.length === 0) return [];
  const own = new Set<string>();
  if (typeof e.resourceId === 'string') own.add(foldCase(bounded(e.resourceId, AUDIT_SHORT_CHARS)));
  if (typeof e.resourceName === 'string') own.add(foldCase(bounded(e.resourceName, AUDIT_NAME_CHARS)));
  const out = new Set<string>();
  for (const s of e.subjects) {
    if (typeof s !== 'string' || s === '') continue;
    const folded = foldCase(bounded(s, AUDIT_SHORT_CHARS));
    if (!own.has(folded)) out.add(folded);
    if (out.size >= AUDIT_SUBJECTS) break;
  }
  return [...out];
}

export function auditInsertParams(e: AuditEntry): unknown[] {
  const name = boundedOrNull(e.resourceName, AUDIT_NAME_CHARS);
  return [
    e.at,
    bounded(e.actor, AUDIT_SHORT_CHARS),
    boundedOrNull(e.clientIp, AUDIT_SHORT_CHARS),
    boundedOrNull(e.requestId, AUDIT_SHORT_CHARS),
    bounded(e.method, AUDIT_SHORT_CHARS),
    e.resourceType,
    boundedOrNull(e.resourceId, AUDIT_SHORT_CHARS),
    name,
    name === null ? null : foldCase(name),
    e.status,
    boundedOrNull(e.scimType, AUDIT_SHORT_CHARS),
    boundedOrNull(e.detail, AUDIT_DETAIL_CHARS),
    e.durationMs,
    boundedChangesJson(e.changes),
    json(boundedUpstream(e.upstream)),
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
    // The record's own resource, or one of its subjects (audit_subjects: e.g. the members a group
    // change added or removed), so a person's history includes the group changes that affected them.
    // One index lookup per way (a UNION, which both planners use; an OR with a subquery would make
    // PostgreSQL scan the whole trail).
    const folded = add(foldCase(q.resource));
    where.push(
      `id IN (SELECT id FROM audit WHERE resource_id = ${add(q.resource)}
        UNION SELECT id FROM audit WHERE resource_name_lower = ${folded}
        UNION SELECT audit_id FROM audit_subjects WHERE subject_lower = ${folded})`,
    );
  }
  if (q.actor !== undefined) where.push(`actor = ${add(q.actor)}`);
  const at = options.unindexedTime ? '+at' : 'at';
  if (q.since !== undefined) where.push(`${at} >= ${add(q.since)}`);
  if (q.until !== undefined) where.push(`${at} < ${add(q.until)}`);
  // `status >= 400` spelled out in each, so SQLite can use the partial index of failures.
  if (q.outcome === 'error') where.push('status >= 400');
  if (q.outcome === 'refused') where.push('status >= 400 AND status < 500');
  if (q.outcome === 'failed') where.push('status >= 400 AND status >= 500');
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

// ---- the activity chart's aggregation (auditTally) ----

/**
 * Upper bounds (exclusive, ms) of the latency classes the activity chart's p95 is read from: about
 * 25 % apart, so a p95 reported as its class's upper bound is at most that far above the true one.
 * Counting per class keeps the aggregation in SQL on both stores (SQLite has no percentile).
 */
export const LATENCY_CLASS_MS = [
  1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400, 500, 600,
  800, 1_000, 1_200, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_000, 8_000, 10_000, 12_000, 15_000, 20_000,
  25_000, 30_000, 40_000, 50_000, 60_000,
];

/** The class of duration_ms as a CASE nested like a binary search (a few comparisons per row). */
function latencyClassSql(lo = 0, hi = LATENCY_CLASS_MS.length): string {
  if (lo === hi) return String(lo);
  const mid = Math.floor((lo + hi) / 2);
  return `CASE WHEN duration_ms < ${LATENCY_CLASS_MS[mid]} THEN ${latencyClassSql(lo, mid)} ELSE ${latencyClassSql(mid + 1, hi)} END`;
}

const KINDS: AuditOutcomeKind[] = ['ok', 'refused', 'failed'];
const KIND_SQL = 'CASE WHEN status >= 500 THEN 2 WHEN status >= 400 THEN 1 ELSE 0 END';
const TALLY_GROUPS = `actor, ${KIND_SQL} AS kind, ${latencyClassSql()} AS class, count(*) AS n`;

/**
 * PostgreSQL: the whole window in one statement ($1 <= at < $2, buckets of $3 seconds); it runs in
 * the database's process, so the bridge's event loop only waits for the answer.
 */
export const AUDIT_TALLY_PG = `SELECT floor(extract(epoch FROM at) / $3::int)::bigint * $3::int * 1000 AS bucket, ${TALLY_GROUPS}
  FROM audit WHERE at >= $1 AND at < $2 GROUP BY 1, 2, 3, 4`;

/**
 * SQLite: one chunk of the window, the records from (at, id) >= ($1, $2) to before ($3, $4)
 * through the time index, in buckets of $5 minutes. The bucket comes from the ISO text itself
 * (day and minute of the day: `at` is always `YYYY-MM-DDTHH:MM:SS.sssZ`), far cheaper per row
 * than parsing it as a time.
 */
export const AUDIT_TALLY_SQLITE = `SELECT substr(at, 1, 10) AS day,
    (CAST(substr(at, 12, 2) AS INTEGER) * 60 + CAST(substr(at, 15, 2) AS INTEGER)) / CAST($5 AS INTEGER) AS slot, ${TALLY_GROUPS}
  FROM audit WHERE at >= $1 AND at <= $3 AND (at, id) >= ($1, $2) AND (at, id) < ($3, $4)
  GROUP BY day, slot, actor, kind, class`;

/** SQLite: the record $4 places after (at, id) >= ($1, $2), before $3: where the next chunk starts. */
export const AUDIT_TALLY_BOUNDARY = `SELECT at, id FROM audit
  WHERE at >= $1 AND at < $3 AND (at, id) >= ($1, $2) ORDER BY at, id LIMIT 1 OFFSET $4`;

export function toTallyRow(
  bucket: number,
  row: { actor: string; kind: number; class: number; n: number | string },
): AuditTallyRow {
  return {
    bucket,
    actor: row.actor,
    kind: KINDS[row.kind],
    latencyClass: Number(row.class),
    count: Number(row.n),
  };
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
 * on the embedded store's event loop, at every retention pass). The records' subjects first, then
 * the records, in one transaction (both pick the same ids: the order is total).
 */
const PRUNED_IDS = 'SELECT id FROM audit WHERE at < $1 ORDER BY at, id LIMIT $2';
export const PRUNE_AUDIT_SUBJECTS = `DELETE FROM audit_subjects WHERE audit_id IN (${PRUNED_IDS})`;
export const PRUNE_AUDIT = `DELETE FROM audit WHERE id IN (${PRUNED_IDS})`;

// Console sessions signed out before their expiry (admin/session.ts); expired ones are pruned as
// sessions are revoked, so the table holds at most the sign-outs of one session lifetime.
export const REVOKE_ADMIN_SESSION =
  'INSERT INTO admin_revoked_sessions (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING';
export const PRUNE_ADMIN_SESSIONS = 'DELETE FROM admin_revoked_sessions WHERE expires_at <= $1';
export const ADMIN_SESSION_REVOKED = 'SELECT 1 AS revoked FROM admin_revoked_sessions WHERE nonce = $1';
