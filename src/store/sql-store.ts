// The store on PostgreSQL (DATABASE_URL), shared by every replica: the store contract (types.ts) and
// the leased resource locks only several replicas need. One file because it is one implementation of
// one interface, method by method; the SQL it shares with the embedded store is already apart
// (sql-common.ts, unit-sql.ts, audit-sql.ts), and what remains is each method's PostgreSQL statement.
import type { Logger } from 'pino';
import {
  ADMIN_SESSION_REVOKED,
  AUDIT_ACTORS,
  AUDIT_TALLY_PG,
  type AuditRow,
  auditListSql,
  PRUNE_ADMIN_SESSIONS,
  PRUNE_AUDIT,
  PRUNE_AUDIT_SUBJECTS,
  REVOKE_ADMIN_SESSION,
  toAuditActor,
  toAuditRecord,
  toTallyRow,
} from './audit-sql.js';
import type { AuditActor, AuditQuery, AuditRecord, AuditTallyRow, DirectoryCounts } from './audit-types.js';
import type { ReadSql, Statement } from './drift-sql.js';
import { type Queryable, type Session, type SqlDriver, UnitStatementError } from './driver.js';
import { StoreLockTimeoutError, StoreUnavailableError } from './errors.js';
import { foldCase } from './fold-case.js';
import type { PublishedLeaderStatus } from './leader-status.js';
import { migrate } from './migrations.js';
import { SingleWrites } from './single-writes.js';
import {
  GROUP_COLUMNS,
  GROUP_IDS_AFTER,
  type GroupRow,
  groupByUser,
  INTENT_COLUMNS,
  type IntentRow,
  keyedBy,
  shortError,
  toGroup,
  toIntent,
  toUser,
  toUserWithGroups,
  USER_COLUMNS,
  USER_WITH_GROUPS,
  type UserRow,
  type UserWithGroupsRow,
  userFilter,
} from './sql-common.js';
import { withTimeout } from './timeout.js';
import {
  type BridgeStore,
  type CommitResult,
  type GroupRecord,
  type IntentRecord,
  StoreConflictError,
  StoreStaleError,
  type StoreWrite,
  type UserQuery,
  type UserRecord,
  type UserWithGroups,
} from './types.js';
import { emptyCommitResult, type UnitDialect, type UnitStep, unitSteps } from './unit-sql.js';

const PG_DIALECT: UnitDialect = {
  now: 'now()',
  // currval: the id this connection's session drew last, i.e. the audit record just inserted.
  insertAuditSubjects: `INSERT INTO audit_subjects (audit_id, subject_lower)
    SELECT currval(pg_get_serial_sequence('audit', 'id')), value
    FROM jsonb_array_elements_text($1::jsonb) AS value ON CONFLICT DO NOTHING`,
};

/**
 * An update (RETURNING its row) that fails with division_by_zero when it matched no row (its record
 * missing or at another version): the database undoes the unit itself, so COMMIT can go out with it.
 */
function rowRequired(update: string): string {
  return `WITH changed AS (${update}), found AS (SELECT count(*) AS n FROM changed)
    SELECT changed.* FROM found LEFT JOIN changed ON true WHERE found.n / found.n = 1`;
}

/**
 * A unit's steps for SqlDriver.unit, or undefined when it cannot run there: each update's check
 * (StoreStaleError) moves into the database (rowRequired), and `checked` holds those steps.
 */
function unitWithChecks(
  writes: readonly StoreWrite[],
  result: CommitResult,
): { steps: UnitStep[]; checked: Set<UnitStep> } | undefined {
  const steps: UnitStep[] = [];
  const checked = new Set<UnitStep>();
  for (const w of writes) {
    const own = unitSteps([w], PG_DIALECT, result);
    if (w.op === 'updateUser' || w.op === 'updateGroup') {
      if (own.length !== 1) return undefined;
      const step = { ...own[0], sql: rowRequired(own[0].sql) };
      checked.add(step);
      steps.push(step);
    } else steps.push(...own);
  }
  return { steps, checked };
}

/** The readiness heartbeat: a tiny real write. */
const HEARTBEAT_SQL =
  "INSERT INTO store_meta (key, value) VALUES ('heartbeat', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

// Unique constraint (named in migrations.ts) → the field a caller can report.
const CONFLICT_FIELDS: Record<string, StoreConflictError['field']> = {
  users_pkey: 'scimId',
  users_user_name_lower_key: 'userName',
  users_upstream_user_id_key: 'upstreamUserId',
  groups_pkey: 'scimId',
  groups_display_name_lower_key: 'displayName',
};

/** pg raises errors carrying the SQLSTATE `code` and the `constraint` name. */
function asConflict(err: unknown): unknown {
  if (typeof err !== 'object' || err === null) return err;
  const { code, constraint } = err as { code?: unknown; constraint?: unknown };
  if (code !== '23505' || typeof constraint !== 'string') return err;
  const field = CONFLICT_FIELDS[constraint];
  return field ? new StoreConflictError(field) : err;
}

/** The lock session's failure as the store's outage error (the driver maps its own queries already). */
function unavailable(err: unknown): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err;
  const code = (err as { code?: unknown })?.code;
  return new StoreUnavailableError(typeof code === 'string' ? code : 'connection failed', { cause: err });
}

/** A lock holder's session silent longer than this is ended by PostgreSQL (its locks freed). */
export const DEFAULT_LOCK_LEASE_MS = 15_000;

export interface SqlStoreOptions {
  /** STORE_LOCK_LEASE_MS: how long a frozen or cut-off replica keeps its locks (leader, resources). */
  lockLeaseMs?: number;
}

interface SessionLease {
  /** Why the lock may be gone (the heartbeat went unanswered, or the connection failed). */
  lost(): Error | undefined;
  /** The heartbeat ended the session itself (it is released already). */
  ended(): boolean;
  stop(): void;
  /** SQL to append to the unlock statement, resetting the lease before the session goes back to the pool. */
  resetSql: string;
}

/** The BridgeStore on PostgreSQL (DATABASE_URL), shared by every replica. */
export class SqlStore extends SingleWrites implements BridgeStore {
  /** Present when the driver has sessions (PostgreSQL); the embedded store has one bridge per DATA_DIR, so the in-process lock is enough there. */
  readonly lockResource?: (key: string, opts?: { deadlineAt?: number }) => Promise<() => Promise<void>>;

  /** How long PostgreSQL keeps a lock whose holder went silent (see lease()). */
  private readonly lockLeaseMs: number;

  constructor(
    private readonly db: SqlDriver,
    private readonly logger?: Logger,
    options: SqlStoreOptions = {},
  ) {
    super();
    this.lockLeaseMs = options.lockLeaseMs ?? DEFAULT_LOCK_LEASE_MS;
    if (db.session) {
      this.lockResource = (key, opts) => this.advisoryLock(key, opts?.deadlineAt);
      this.tryLeadership = (name) => this.leadership(name);
    }
  }

  readonly tryLeadership?: (name: string) => Promise<{ lost(): boolean; release(): Promise<void> } | null>;

  /** Whether the server has idle_session_timeout (PostgreSQL 14+); asked once. */
  private idleTimeoutSupport: Promise<boolean> | undefined;

  private supportsIdleTimeout(session: Session): Promise<boolean> {
    this.idleTimeoutSupport ??= session
      .query<{ ok: boolean }>(`SELECT current_setting('server_version_num')::int >= 140000 AS ok`)
      .then(([row]) => {
        if (!row.ok) {
          this.logger?.warn(
            'PostgreSQL before 14 has no idle_session_timeout: a frozen or cut-off replica keeps its locks until TCP keepalive ends its session',
          );
        }
        return row.ok;
      })
      .catch((err) => {
        this.idleTimeoutSupport = undefined;
        throw err;
      });
    return this.idleTimeoutSupport;
  }

  /** The statement that puts a session under the lease's idle timeout (when `bounded`). */
  private leaseTimeout(session: Session, bounded: boolean): Promise<unknown> | undefined {
    return bounded
      ? session.query(`SELECT set_config('idle_session_timeout', $1, false)`, [`${this.lockLeaseMs}ms`])
      : undefined;
  }

  /**
   * Bounds a session that holds a lock (the lock lives as long as the session) both ways:
   * - PostgreSQL ends it once it has been idle for the lease (idle_session_timeout). A holder that
   *   is frozen, or cut off by a network that drops packets without a reset, sends nothing, and
   *   PostgreSQL (which cannot tell: its TCP peer still acknowledges) frees the lock within the lease.
   * - A heartbeat (`SELECT 1`) every third of the lease keeps a healthy holder's session busy; one
   *   that fails or gets no answer within a third of the lease ends the session on this side, and
   *   `lost()` says so, before PostgreSQL frees the lock for someone else.
   * A connection that dies (SIGKILL, pg_terminate_backend, a reset) frees the lock at once anyway.
   * The caller has set the idle timeout (leaseTimeout()) when `bounded`.
   */
  private lease(session: Session, what: string, bounded: boolean): SessionLease {
    const leaseMs = this.lockLeaseMs;
    let ended: Error | undefined;
    let beating = false;
    let stopped = false;
    const beatMs = Math.max(100, Math.floor(leaseMs / 3));
    // When the session last answered. A holder that was frozen (its timers did not run) may find
    // on waking that PostgreSQL has already ended its idle session and given the lock to someone
    // else: with no answer for five sixths of the lease the lock counts as lost at once, before the
    // heartbeat could tell (a healthy session answers at least every two thirds of it; the last
    // sixth is the margin for a commit that follows the check).
    let answeredAt = Date.now();
    const staleMs = leaseMs - Math.floor(beatMs / 2);
    const heartbeat = setInterval(() => {
      if (beating || ended || stopped) return;
      if (session.failure) {
        ended = session.failure;
        clearInterval(heartbeat);
        session.release(ended);
        return;
      }
      beating = true;
      withTimeout(session.query('SELECT 1'), beatMs)
        .then(() => {
          answeredAt = Date.now();
        })
        .catch((err: unknown) => {
          // Stopped: the holder is releasing the lock itself (and the session with it).
          if (ended || stopped) return;
          ended = err instanceof Error ? err : new Error(String(err));
          clearInterval(heartbeat);
          this.logger?.warn(
            { err, leaseMs },
            `${what}: its session did not answer the heartbeat; giving it up`,
          );
          // With the heartbeat still unanswered, the pool destroys the socket instead of waiting on it.
          session.release(ended);
        })
        .finally(() => {
          beating = false;
        });
    }, beatMs);
    heartbeat.unref();
    return {
      lost: () =>
        ended ??
        session.failure ??
        (Date.now() - answeredAt > staleMs
          ? new Error(`${what}: its session has not answered for ${Date.now() - answeredAt} ms`)
          : undefined),
      stop: () => {
        stopped = true;
        clearInterval(heartbeat);
      },
      // Back in the pool, the session must not carry the lease (PostgreSQL would end it while idle).
      resetSql: bounded ? `, set_config('idle_session_timeout', '0', false)` : '',
      ended: () => ended !== undefined,
    };
  }

  /**
   * pg_try_advisory_lock on a connection of its own (tier 'leader'), kept while leading, under a
   * lease (see lease()): a leader that is frozen or cut off loses the lead within lockLeaseMs, and
   * `lost()` tells a leader that can no longer reach its session to stop leading.
   */
  private async leadership(name: string): Promise<{ lost(): boolean; release(): Promise<void> } | null> {
    let session: Session;
    try {
      session = await this.db.session!('leader');
    } catch (err) {
      throw unavailable(err);
    }
    const hashed = `hashtextextended('volc-scim-bridge/leader/' || coalesce(current_schema(), '') || '/' || $1, 0)`;
    let held: SessionLease;
    try {
      const [{ ok }] = await session.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${hashed}) AS ok`, [
        name,
      ]);
      if (!ok) {
        session.release();
        return null;
      }
      const bounded = await this.supportsIdleTimeout(session);
      await this.leaseTimeout(session, bounded);
      held = this.lease(session, 'reconciler leadership', bounded);
    } catch (err) {
      session.release(err instanceof Error ? err : new Error(String(err)));
      throw unavailable(err);
    }
    let released = false;
    return {
      lost: () => held.lost() !== undefined,
      release: async () => {
        if (released) return;
        released = true;
        held.stop();
        if (held.ended()) return;
        const lost = held.lost();
        if (lost) {
          session.release(lost);
          return;
        }
        try {
          await session.query(`SELECT pg_advisory_unlock(${hashed})${held.resetSql}`, [name]);
          session.release();
        } catch (err) {
          session.release(err instanceof Error ? err : new Error(String(err)));
        }
      },
    };
  }

  /**
   * A session-level advisory lock on a connection of its own, held until the release runs, under a
   * lease (see lease()): a frozen or cut-off holder does not block the resource past lockLeaseMs.
   * The key is hashed (64 bits) with the schema, so bridges on other schemas of the same database
   * do not contend. If the lock is lost while held (the connection died, or the lease ran out), the
   * release reports the store unavailable, and the request's answer (503) makes the client retry
   * what may have overlapped.
   */
  private async advisoryLock(key: string, deadlineAt: number | undefined): Promise<() => Promise<void>> {
    const tier = key.slice(0, Math.max(0, key.indexOf(':'))) || 'default';
    let session: Session;
    try {
      session = await this.db.session!(tier);
    } catch (err) {
      throw unavailable(err);
    }
    const hashed = `hashtextextended('volc-scim-bridge/resource/' || coalesce(current_schema(), '') || '/' || $1, 0)`;
    let held: SessionLease;
    try {
      const bounded = await this.supportsIdleTimeout(session);
      // lock_timeout bounds the wait by the request's deadline (0 would mean no limit). The session
      // pipelines: the timeout, the lock and the lease's idle timeout go out together, in this order
      // (a session waiting for a lock is not idle), and cost one round trip.
      const waitMs = deadlineAt === undefined ? 0 : Math.max(1, Math.floor(deadlineAt - Date.now()));
      const answers = [
        session.query(`SELECT set_config('lock_timeout', $1, false)`, [`${waitMs}ms`]),
        session.query(`SELECT pg_advisory_lock(${hashed})`, [key]),
        this.leaseTimeout(session, bounded),
      ];
      // Every answer is awaited (none rejects unheard); the first failure is the cause.
      const settled = await Promise.allSettled(answers);
      const failed = settled.find((a) => a.status === 'rejected');
      if (failed) throw failed.reason;
      held = this.lease(session, `resource lock ${key}`, bounded);
    } catch (err) {
      session.release(err instanceof Error ? err : new Error(String(err)));
      if ((err as { code?: unknown })?.code === '55P03') throw new StoreLockTimeoutError(key);
      throw unavailable(err);
    }
    return async () => {
      held.stop();
      const lost = held.lost();
      if (lost) {
        if (!held.ended()) session.release(lost);
        this.logger?.warn({ err: lost, key }, 'the connection holding a resource lock failed while held');
        throw unavailable(lost);
      }
      try {
        await session.query(`SELECT pg_advisory_unlock(${hashed})${held.resetSql}`, [key]);
        session.release();
      } catch (err) {
        // Discarding the connection ends its session, which releases the lock too.
        session.release(err instanceof Error ? err : new Error(String(err)));
        this.logger?.warn({ err, key }, 'could not release a resource lock; its connection was closed');
      }
    };
  }

  async init(): Promise<void> {
    await migrate(this.db, this.logger);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  /** A lookup by key: prepared on each connection when the driver can (SqlDriver.queryPrepared). */
  private lookup<T>(sql: string, params: readonly unknown[]): Promise<T[]> {
    return this.db.queryPrepared ? this.db.queryPrepared<T>(sql, params) : this.db.query<T>(sql, params);
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1');
  }

  /** Why the last write failed for want of the store; null once a write commits. */
  private writeFailure: string | null = null;

  /**
   * Every write passes through here to keep the write health. A single statement outside a
   * transaction commits before PostgreSQL answers it (pg resolves on ReadyForQuery), so its commit
   * error is the statement's error; several statements run in one transaction (commit()).
   */
  private async written<T>(write: Promise<T>): Promise<T> {
    try {
      const value = await write;
      this.writeFailure = null;
      return value;
    } catch (err) {
      const mapped = asConflict(err);
      if (mapped instanceof StoreUnavailableError) {
        if (this.writeFailure === null)
          this.logger?.warn({ reason: mapped.reason }, 'PostgreSQL store cannot write');
        this.writeFailure = mapped.reason;
      } else if (mapped instanceof StoreConflictError || mapped instanceof StoreStaleError) {
        // The database answered: it can write.
        this.writeFailure = null;
      }
      throw mapped;
    }
  }

  /**
   * One unit of work: BEGIN, its statements, COMMIT, on one connection. The statements go out as one
   * pipelined batch (no statement's parameters wait for another's rows), their answers are read in order.
   * With SqlDriver.unit (pg), COMMIT goes out in the same batch: one round trip. An update that finds
   * its record missing or at another version fails in the database (rowRequired), and any failing
   * statement turns that COMMIT into ROLLBACK. Without it (a driver of tests), COMMIT is sent once
   * every answer has been read and checked. A single statement runs alone (it is its own
   * transaction). Any failure rolls back and is rethrown (a stale update as StoreStaleError); a
   * connection lost before or during COMMIT is StoreUnavailableError.
   */
  async commit(writes: readonly StoreWrite[]): Promise<CommitResult> {
    if (writes.length === 0) return emptyCommitResult();
    const result = emptyCommitResult();
    const unit = this.db.unit && unitWithChecks(writes, result);
    if (unit && unit.steps.length > 1) return this.written(this.unit(unit.steps, unit.checked, result));
    const steps = unitSteps(writes, PG_DIALECT, result);
    const run = async (on: Queryable) => {
      const answers = await Promise.allSettled(steps.map(({ sql, params }) => on.query(sql, params)));
      // The first failure is the cause; the statements after it only report the aborted transaction.
      const failed = answers.find((a) => a.status === 'rejected');
      if (failed) throw failed.reason;
      answers.forEach((a, i) => {
        if (a.status === 'fulfilled') steps[i].read?.(a.value);
      });
      return result;
    };
    if (steps.length === 1) return this.written(run(this.db));
    return this.written(this.db.transaction(run));
  }

  /** A unit in one round trip (SqlDriver.unit); an update that found no row is StoreStaleError. */
  private async unit(steps: UnitStep[], checked: Set<UnitStep>, result: CommitResult): Promise<CommitResult> {
    let rows: unknown[][];
    try {
      rows = await this.db.unit!(steps);
    } catch (err) {
      if (!(err instanceof UnitStatementError)) throw err;
      const step = steps[err.index];
      // Its read throws StoreStaleError for the missing row.
      if (checked.has(step) && (err.cause as { code?: unknown })?.code === '22012') step.read?.([]);
      throw err.cause;
    }
    steps.forEach((step, i) => {
      step.read?.(rows[i]);
    });
    return result;
  }

  writeFailureReason(): string | null {
    return this.writeFailure;
  }

  async heartbeat(): Promise<void> {
    await this.written(this.db.query(HEARTBEAT_SQL, [new Date().toISOString()]));
  }

  // ---- store_meta (the upstream binding, binding.ts) ----

  async getMeta(key: string): Promise<string | null> {
    const rows = await this.lookup<{ value: string }>('SELECT value FROM store_meta WHERE key = $1', [key]);
    return rows.length > 0 ? rows[0].value : null;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.written(
      this.db.query(
        'INSERT INTO store_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [key, value],
      ),
    );
  }

  async insertMetaIfAbsent(key: string, value: string): Promise<void> {
    await this.written(
      this.db.query('INSERT INTO store_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [
        key,
        value,
      ]),
    );
  }

  // ---- users ----

  async getUser(scimId: string): Promise<UserRecord | null> {
    const rows = await this.lookup<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE scim_id = $1`, [scimId]);
    return rows.length > 0 ? toUser(rows[0]) : null;
  }

  /** The rows of `select` whose `column` is one of `keys`, in one statement; none for no keys. */
  private async rowsWhereIn<Row>(select: string, column: string, keys: string[]): Promise<Row[]> {
    if (keys.length === 0) return [];
    return this.db.query<Row>(`${select} WHERE ${column} = ANY($1::text[])`, [keys]);
  }

  async getUsers(scimIds: string[]): Promise<Map<string, UserRecord>> {
    const rows = await this.rowsWhereIn<UserRow>(`SELECT ${USER_COLUMNS} FROM users`, 'scim_id', scimIds);
    return keyedBy(rows, (row) => row.scim_id, toUser);
  }

  async getUserWithGroups(scimId: string): Promise<UserWithGroups | null> {
    return toUserWithGroups(await this.lookup<UserWithGroupsRow>(USER_WITH_GROUPS, [scimId]));
  }

  async getUsersByUpstreamIds(upstreamUserIds: string[]): Promise<Map<string, UserRecord>> {
    const select = `SELECT ${USER_COLUMNS} FROM users`;
    const rows = await this.rowsWhereIn<UserRow>(select, 'upstream_user_id', upstreamUserIds);
    return keyedBy(rows, (row) => row.upstream_user_id!, toUser);
  }

  async findUserByUserName(userName: string): Promise<UserRecord | null> {
    const rows = await this.lookup<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE user_name_lower = $1`, [
      foldCase(userName),
    ]);
    return rows.length > 0 ? toUser(rows[0]) : null;
  }

  async findUsersByExternalId(externalId: string): Promise<UserRecord[]> {
    const rows = await this.db.query<UserRow>(
      `SELECT ${USER_COLUMNS} FROM users WHERE external_id = $1 ORDER BY created_at, scim_id`,
      [externalId],
    );
    return rows.map(toUser);
  }

  async listUsers(query: UserQuery, offset: number, limit: number): Promise<UserRecord[]> {
    const params: unknown[] = [];
    const where = userFilter(query, params);
    params.push(offset, limit);
    const rows = await this.db.query<UserRow>(
      `SELECT ${USER_COLUMNS} FROM users ${where}
       ORDER BY created_at, scim_id OFFSET $${params.length - 1} LIMIT $${params.length}`,
      params,
    );
    return rows.map(toUser);
  }

  async countUsers(query: UserQuery): Promise<number> {
    const params: unknown[] = [];
    const where = userFilter(query, params);
    // ::int because count() is bigint, which pg returns as a string.
    const rows = await this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM users ${where}`, params);
    return rows[0].n;
  }

  // ---- groups ----

  async getGroup(scimId: string): Promise<GroupRecord | null> {
    const rows = await this.lookup<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM groups WHERE scim_id = $1`, [
      scimId,
    ]);
    return rows.length > 0 ? toGroup(rows[0]) : null;
  }

  async getGroups(scimIds: string[]): Promise<Map<string, GroupRecord>> {
    const rows = await this.rowsWhereIn<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM groups`, 'scim_id', scimIds);
    return keyedBy(rows, (row) => row.scim_id, toGroup);
  }

  async findGroupByDisplayName(displayName: string): Promise<GroupRecord | null> {
    const rows = await this.lookup<GroupRow>(
      `SELECT ${GROUP_COLUMNS} FROM groups WHERE display_name_lower = $1`,
      [foldCase(displayName)],
    );
    return rows.length > 0 ? toGroup(rows[0]) : null;
  }

  async findGroupsByExternalId(externalId: string): Promise<GroupRecord[]> {
    const rows = await this.db.query<GroupRow>(
      `SELECT ${GROUP_COLUMNS} FROM groups WHERE external_id = $1 ORDER BY created_at, scim_id`,
      [externalId],
    );
    return rows.map(toGroup);
  }

  // ---- memberships ----

  async groupsOfUser(userScimId: string): Promise<string[]> {
    const rows = await this.lookup<{ group_scim_id: string }>(
      'SELECT group_scim_id FROM memberships WHERE user_scim_id = $1 ORDER BY group_scim_id',
      [userScimId],
    );
    return rows.map((r) => r.group_scim_id);
  }

  async groupsOfUsers(userScimIds: string[]): Promise<Map<string, string[]>> {
    if (userScimIds.length === 0) return new Map();
    const rows = await this.db.query<{ user_scim_id: string; group_scim_id: string }>(
      'SELECT user_scim_id, group_scim_id FROM memberships WHERE user_scim_id = ANY($1::text[]) ORDER BY group_scim_id',
      [userScimIds],
    );
    return groupByUser(rows);
  }

  async membersOfGroup(groupScimId: string): Promise<string[]> {
    const rows = await this.db.query<{ user_scim_id: string }>(
      'SELECT user_scim_id FROM memberships WHERE group_scim_id = $1 ORDER BY user_scim_id',
      [groupScimId],
    );
    return rows.map((r) => r.user_scim_id);
  }

  async groupIdsAfter(after: string, limit: number): Promise<string[]> {
    const rows = await this.db.query<{ scim_id: string }>(GROUP_IDS_AFTER, [after, limit]);
    return rows.map((r) => r.scim_id);
  }

  // ---- intents ----

  async intentsOf(resource: string): Promise<IntentRecord[]> {
    const rows = await this.db.query<IntentRow>(
      `SELECT ${INTENT_COLUMNS} FROM intents WHERE resource = $1 ORDER BY created_at, id`,
      [resource],
    );
    return rows.map(toIntent);
  }

  async dueIntents(now: Date, limit: number): Promise<IntentRecord[]> {
    const rows = await this.db.query<IntentRow>(
      `SELECT ${INTENT_COLUMNS} FROM intents WHERE next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2`,
      [now.toISOString(), limit],
    );
    return rows.map(toIntent);
  }

  async recordIntentAttempt(id: string, error: string, nextAttemptAt: Date): Promise<void> {
    await this.written(
      this.db.query(
        'UPDATE intents SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1',
        [id, shortError(error), nextAttemptAt.toISOString()],
      ),
    );
  }

  async countIntents(): Promise<number> {
    const rows = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM intents');
    return rows[0].n;
  }

  // ---- audit trail and counts (audit-sql.ts) ----

  async listAudit(query: AuditQuery): Promise<AuditRecord[]> {
    const { sql, params } = auditListSql(query);
    return (await this.db.query<AuditRow>(sql, params)).map(toAuditRecord);
  }

  async auditTally(since: string, until: string, bucketSeconds: number): Promise<AuditTallyRow[]> {
    const rows = await this.db.query<{
      bucket: string;
      actor: string;
      kind: number;
      class: number;
      n: string;
    }>(AUDIT_TALLY_PG, [since, until, bucketSeconds]);
    return rows.map((row) => toTallyRow(Number(row.bucket), row));
  }

  async auditActors(limit: number): Promise<AuditActor[]> {
    const rows = await this.db.query<{ actor: string; last_at: Date; writes: string; errors: string }>(
      AUDIT_ACTORS,
      [limit],
    );
    return rows.map(toAuditActor);
  }

  async pruneAudit(before: string, limit: number): Promise<number> {
    return this.written(
      this.db.transaction(async (tx) => {
        await tx.query(PRUNE_AUDIT_SUBJECTS, [before, limit]);
        return (await tx.query<{ id: string }>(`${PRUNE_AUDIT} RETURNING id`, [before, limit])).length;
      }),
    );
  }

  // ---- console sessions ----

  async revokeAdminSession(nonce: string, expiresAt: string): Promise<void> {
    await this.written(
      this.db.transaction(async (tx) => {
        await tx.query(PRUNE_ADMIN_SESSIONS, [new Date().toISOString()]);
        await tx.query(REVOKE_ADMIN_SESSION, [nonce, expiresAt]);
      }),
    );
  }

  async adminSessionRevoked(nonce: string): Promise<boolean> {
    return (await this.db.query(ADMIN_SESSION_REVOKED, [nonce])).length > 0;
  }

  // ---- leader status ----

  async publishLeaderStatus(role: string, replica: string, status: Record<string, unknown>): Promise<void> {
    await this.written(
      this.db.query(
        `INSERT INTO leader_status (role, replica, published_at, status) VALUES ($1, $2, now(), $3)
         ON CONFLICT (role) DO UPDATE SET replica = excluded.replica,
           published_at = excluded.published_at, status = excluded.status`,
        [role, replica, JSON.stringify(status)],
      ),
    );
  }

  async leaderStatus(role: string): Promise<PublishedLeaderStatus | null> {
    const rows = await this.db.query<{
      replica: string;
      published_at: Date;
      age_ms: string;
      status: Record<string, unknown>;
    }>(
      `SELECT replica, published_at, status,
         greatest(0, floor(extract(epoch FROM (now() - published_at)) * 1000))::bigint AS age_ms
       FROM leader_status WHERE role = $1`,
      [role],
    );
    if (rows.length === 0) return null;
    const row = rows[0];
    return {
      role,
      replica: row.replica,
      publishedAt: row.published_at.toISOString(),
      ageMs: Number(row.age_ms),
      status: row.status,
    };
  }

  /**
   * Exact counts without count(*): the sum of the deltas the tables' triggers append to row_counts
   * (migration 14), a few dozen rows whatever the directory's size.
   */
  async directoryCounts(): Promise<DirectoryCounts> {
    const rows = await this.db.query<{ name: string; n: string }>(
      'SELECT name, sum(n) AS n FROM row_counts GROUP BY name',
    );
    const n = new Map(rows.map((r) => [r.name, Number(r.n)]));
    return {
      users: n.get('users') ?? 0,
      deactivated: n.get('users_inactive') ?? 0,
      groups: n.get('groups') ?? 0,
      memberships: n.get('memberships') ?? 0,
    };
  }

  // ---- drift snapshot (drift-sql.ts) ----

  protected readonly read: ReadSql = <T>(sql: string, params: unknown[]) => this.db.query<T>(sql, params);

  protected async writeAll(statements: Statement[]): Promise<void> {
    await this.written(
      this.db.transaction(async (tx) => {
        for (const s of statements) await tx.query(s.sql, s.params);
      }),
    );
  }
}
