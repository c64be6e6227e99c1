// The drift snapshot's SQL (drift-types.ts), the same text on PostgreSQL and SQLite: both stores run
// the statements of a write in one transaction of theirs, and the reads through their own query call.
import type { DriftProgress, DriftReportedFinding, DriftSweepState, UnmanagedPage } from './drift-types.js';

export interface Statement {
  sql: string;
  params: unknown[];
}

/** Runs one read: PostgreSQL's pool or SQLite's synchronous statement. */
export type ReadSql = <T>(sql: string, params: unknown[]) => Promise<T[]>;

const UPSERT_STATE = `INSERT INTO drift_sweep (id, state) VALUES (1, $1)
  ON CONFLICT (id) DO UPDATE SET state = excluded.state`;
const UPSERT_ACCOUNT = `INSERT INTO drift_unmanaged
  (user_id, user_name, display_name, email, source, created_time, seen_sweep, seen_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
  ON CONFLICT (user_id) DO UPDATE SET user_name = excluded.user_name,
    display_name = excluded.display_name, email = excluded.email, source = excluded.source,
    created_time = excluded.created_time, seen_sweep = excluded.seen_sweep, seen_at = excluded.seen_at`;
const UPSERT_MEMBERSHIP = `INSERT INTO drift_unmanaged_groups (user_id, group_id, group_name, seen_sweep)
  VALUES ($1, $2, $3, $4)
  ON CONFLICT (user_id, group_id) DO UPDATE SET group_name = excluded.group_name,
    seen_sweep = excluded.seen_sweep`;

/** One pass's progress: its rows and the new state, and at the end of a sweep the rows it did not see. */
export function driftProgressStatements(p: DriftProgress): Statement[] {
  const at = p.state.lastPassAt ?? new Date().toISOString();
  const out: Statement[] = [{ sql: UPSERT_STATE, params: [JSON.stringify(p.state)] }];
  for (const a of p.accounts) {
    out.push({
      sql: UPSERT_ACCOUNT,
      params: [a.userId, a.userName, a.displayName, a.email, a.source, a.createdTime, p.seenSweep, at],
    });
  }
  for (const m of p.memberships) {
    out.push({ sql: UPSERT_MEMBERSHIP, params: [m.userId, m.groupId, m.groupName, p.seenSweep] });
  }
  if (p.finished) {
    out.push({ sql: 'DELETE FROM drift_unmanaged WHERE seen_sweep < $1', params: [p.seenSweep] });
    out.push({ sql: 'DELETE FROM drift_unmanaged_groups WHERE seen_sweep < $1', params: [p.seenSweep] });
  }
  return out;
}

export function replaceFindingsStatements(checked: string[], findings: DriftReportedFinding[]): Statement[] {
  const out: Statement[] = checked.map((scimId) => ({
    sql: 'DELETE FROM drift_reported WHERE scim_id = $1',
    params: [scimId],
  }));
  for (const f of findings) {
    out.push({
      sql: `INSERT INTO drift_reported (kind, scim_id, upstream_user_id, upstream_user_name, detail, found_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (scim_id, kind) DO UPDATE SET upstream_user_id = excluded.upstream_user_id,
          upstream_user_name = excluded.upstream_user_name, detail = excluded.detail`,
      params: [f.kind, f.scimId, f.upstreamUserId, f.upstreamUserName, f.detail, f.foundAt],
    });
  }
  return out;
}

export async function readDriftSweep(read: ReadSql): Promise<DriftSweepState | null> {
  const rows = await read<{ state: string }>('SELECT state FROM drift_sweep WHERE id = 1', []);
  return rows.length > 0 ? (JSON.parse(rows[0].state) as DriftSweepState) : null;
}

/** `%text%` for LIKE, its wildcards taken literally. */
function contains(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

const UNMAPPED = 'NOT EXISTS (SELECT 1 FROM users u WHERE u.upstream_user_id = d.user_id)';

interface AccountRow {
  user_id: string;
  user_name: string;
  display_name: string | null;
  email: string | null;
  source: string | null;
  created_time: string | null;
  seen_at: string;
}

export async function readUnmanaged(
  read: ReadSql,
  query: { offset: number; limit: number; q?: string },
): Promise<UnmanagedPage> {
  const params: unknown[] = [];
  let where = `WHERE ${UNMAPPED}`;
  if (query.q) {
    params.push(contains(query.q));
    where += ` AND (lower(d.user_name) LIKE $1 ESCAPE '\\' OR lower(coalesce(d.display_name, '')) LIKE $1 ESCAPE '\\'
      OR lower(coalesce(d.email, '')) LIKE $1 ESCAPE '\\')`;
  }
  const [{ n }] = await read<{ n: number | string }>(
    `SELECT count(*) AS n FROM drift_unmanaged d ${where}`,
    params,
  );
  const rows = await read<AccountRow>(
    `SELECT d.user_id, d.user_name, d.display_name, d.email, d.source, d.created_time, d.seen_at
      FROM drift_unmanaged d ${where} ORDER BY d.user_name, d.user_id
      LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
    [...params, query.limit, query.offset],
  );
  const groups = new Map<string, Array<{ groupId: string; groupName: string }>>();
  if (rows.length > 0) {
    const marks = rows.map((_, i) => `$${i + 1}`).join(', ');
    const memberships = await read<{ user_id: string; group_id: string; group_name: string }>(
      `SELECT user_id, group_id, group_name FROM drift_unmanaged_groups WHERE user_id IN (${marks})
        ORDER BY group_name, group_id`,
      rows.map((r) => r.user_id),
    );
    for (const m of memberships) {
      const list = groups.get(m.user_id) ?? [];
      list.push({ groupId: m.group_id, groupName: m.group_name });
      groups.set(m.user_id, list);
    }
  }
  return {
    total: Number(n),
    accounts: rows.map((r) => ({
      userId: r.user_id,
      userName: r.user_name,
      displayName: r.display_name,
      email: r.email,
      source: r.source,
      createdTime: r.created_time,
      seenAt: r.seen_at,
      groups: groups.get(r.user_id) ?? [],
    })),
  };
}

interface FindingRow {
  kind: DriftReportedFinding['kind'];
  scim_id: string;
  user_name: string;
  upstream_user_id: string | null;
  upstream_user_name: string | null;
  detail: string;
  found_at: string;
}

export async function readDriftFindings(
  read: ReadSql,
  limit: number,
): Promise<{ total: number; findings: DriftReportedFinding[] }> {
  const from = 'FROM drift_reported r JOIN users u ON u.scim_id = r.scim_id';
  const [{ n }] = await read<{ n: number | string }>(`SELECT count(*) AS n ${from}`, []);
  const rows = await read<FindingRow>(
    `SELECT r.kind, r.scim_id, u.user_name, r.upstream_user_id, r.upstream_user_name, r.detail, r.found_at
      ${from} ORDER BY r.found_at DESC, r.scim_id LIMIT $1`,
    [limit],
  );
  return {
    total: Number(n),
    findings: rows.map((r) => ({
      kind: r.kind,
      scimId: r.scim_id,
      userName: r.user_name,
      upstreamUserId: r.upstream_user_id,
      upstreamUserName: r.upstream_user_name,
      detail: r.detail,
      foundAt: r.found_at,
    })),
  };
}
