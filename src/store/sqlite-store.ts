// The embedded store: SQLite through better-sqlite3, one file DATA_DIR/bridge.sqlite (opening, the
// DATA_DIR lock and the start-up checks are data-dir.ts). WAL with synchronous=FULL: a write is
// acknowledged only after its commit is fsync'ed, so it survives SIGKILL and power loss.
//
// Reads run synchronously on the caller's turn. Every write (a unit of work, commit(), or one of the
// single-write methods, each a unit of its own) is queued and committed by a group commit: the writes
// queued in one turn of the event loop run in one BEGIN IMMEDIATE … COMMIT, each in a SAVEPOINT of its
// own, so concurrent requests share one fsync, and one that fails (a conflict, a stale version) is
// rolled back alone. The COMMIT is an explicit statement whose error (a full disk: SQLITE_FULL,
// SQLITE_IOERR) rejects every write of the batch: no autocommit statement, whose commit error
// better-sqlite3's Statement.get() would lose, and nothing acknowledged that was not committed.
// Group commit rather than a writer on a worker thread: bench/store-commit.ts has the figures.
// Isolation: better-sqlite3 is synchronous, so a batch runs to its COMMIT without yielding, and no
// request observes a write before its commit.
// The audit reads (listAudit, auditTally) turn the event loop between bounded statements, so a
// read over a long trail never holds other requests up (each statement is consistent on its own).
// One file because it is one implementation of the store contract (types.ts), method by method,
// around one group-commit queue; the SQL it shares with PostgreSQL is apart (sql-common.ts,
// unit-sql.ts, audit-sql.ts).
import { statSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import {
  ADMIN_SESSION_REVOKED,
  AUDIT_ACTORS,
  AUDIT_TALLY_BOUNDARY,
  AUDIT_TALLY_SQLITE,
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
import type { StoreMeta } from './binding.js';
import type { ReadSql, Statement } from './drift-sql.js';
import { StoreUnavailableError } from './errors.js';
import { foldCase } from './fold-case.js';
import type { PublishedLeaderStatus } from './leader-status.js';
import { SingleWrites } from './single-writes.js';
import {
  GROUP_COLUMNS,
  GROUP_IDS_AFTER,
  type GroupRow,
  groupByUser,
  INTENT_COLUMNS,
  type IntentRow,
  json,
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
import { migrateSqlite, SQLITE_NOW, SQLITE_SCHEMA_VERSION } from './sqlite-migrations.js';
import {
  type BridgeStore,
  type CommitResult,
  type GroupRecord,
  type IntentRecord,
  StoreConflictError,
  type StoreWrite,
  type UserQuery,
  type UserRecord,
  type UserWithGroups,
} from './types.js';
import { emptyCommitResult, SQLITE_AUDIT_SUBJECTS, type UnitDialect, unitSteps } from './unit-sql.js';

const SQLITE_DIALECT: UnitDialect = {
  now: SQLITE_NOW,
  insertAuditSubjects: SQLITE_AUDIT_SUBJECTS,
};

/** A leader's status, replacing the role's previous one. */
const PUBLISH_LEADER_STATUS = `INSERT INTO leader_status (role, replica, published_at, status) VALUES ($1, $2, $3, $4)
  ON CONFLICT (role) DO UPDATE SET replica = excluded.replica, published_at = excluded.published_at,
    status = excluded.status`;
/** The readiness heartbeat: a tiny real write through the same path as every other. */
const HEARTBEAT_SQL =
  "INSERT INTO store_meta (key, value) VALUES ('heartbeat', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/** busy_timeout: how long a statement waits for a lock held by another connection (a backup). */
export const BUSY_TIMEOUT_MS = 5_000;

/**
 * Audit reads run on the event loop: one statement reads at most this many audit ids (listAudit)
 * or records (auditTally), and the loop turns between statements, so a sparse filter over a
 * million records, a long export or a week of activity never holds up other requests (/healthz)
 * for more than one statement (milliseconds).
 */
export const AUDIT_SCAN_CHUNK = 10_000;
export const AUDIT_TALLY_CHUNK = 5_000;

// "UNIQUE constraint failed: <table>.<column>" → the field a caller can report.
const CONFLICT_FIELDS: Record<string, StoreConflictError['field']> = {
  'users.scim_id': 'scimId',
  'users.user_name_lower': 'userName',
  'users.upstream_user_id': 'upstreamUserId',
  'groups.scim_id': 'scimId',
  'groups.display_name_lower': 'displayName',
};

// Result codes (extended ones start with these) that mean the database cannot be used right now.
const UNAVAILABLE = [
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_IOERR',
  'SQLITE_FULL',
  'SQLITE_READONLY',
  'SQLITE_CANTOPEN',
  'SQLITE_CORRUPT',
  'SQLITE_NOTADB',
  'SQLITE_PROTOCOL',
];

/** A better-sqlite3 error as the store's domain error; other errors unchanged. */
export function mapSqliteError(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      const column = /constraint failed: (\S+)/.exec((err as Error).message)?.[1];
      const field = column ? CONFLICT_FIELDS[column] : undefined;
      return field ? new StoreConflictError(field) : err;
    }
    // The code is secret-free: no path, no data.
    if (UNAVAILABLE.some((c) => code === c || code.startsWith(`${c}_`))) {
      return new StoreUnavailableError(`SQLite ${code}`, { cause: err });
    }
  }
  if (err instanceof TypeError && /database connection is not open/.test(err.message)) {
    return new StoreUnavailableError('the embedded store is closed', { cause: err });
  }
  return err;
}

/**
 * Detached users through their partial index. Without statistics SQLite's planner takes
 * `upstream_user_id IS NULL` for an equality on a unique column (one row) and picks that index, then
 * sorts every detached user for each list page: 100–250 ms per page at 100,000 tombstones, against
 * 1–7 ms through users_detached_idx.
 */
function usersFor(query: UserQuery): string {
  return query.detached === true ? 'users INDEXED BY users_detached_idx' : 'users';
}

/** `$1…$n` placeholders bind by name in better-sqlite3; SQLite has no boolean type. */
function bind(params: readonly unknown[]): Record<string, unknown> {
  const named: Record<string, unknown> = {};
  params.forEach((p, i) => {
    named[i + 1] = typeof p === 'boolean' ? (p ? 1 : 0) : p;
  });
  return named;
}

export interface SqliteStoreOptions {
  logger?: Logger;
  /** Called after the database closes (releases the DATA_DIR lock). */
  onClose?: () => void;
  /** The database file, which ping checks is still the one open (DATA_DIR removed or swapped). */
  file?: string;
}

/** Opens a database for the store: PRAGMAs and migrations. `:memory:` for tests. */
export function prepareDatabase(db: Database.Database, logger?: Logger): void {
  if (db.memory) db.pragma('journal_mode = MEMORY');
  else db.pragma('journal_mode = WAL');
  // FULL: the WAL is fsync'ed at every commit (NORMAL would only at checkpoints: a power loss could
  // lose acknowledged writes).
  db.pragma('synchronous = FULL');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  // No foreign keys: members and groups created outside the bridge have no record (as in PostgreSQL).
  db.pragma('foreign_keys = OFF');
  const applied = migrateSqlite(db);
  for (const version of applied) logger?.info({ version }, 'embedded store migration applied');
  // Statement and savepoint journals in memory (after the migrations, whose index builds may sort a
  // long trail): they only undo a failed unit inside its transaction and play no part in crash
  // recovery. In a file, every page a unit touches was written out to it (two pwrites a page, ~80
  // per POST /Users) and the next COMMIT's fsync flushed those writes with the WAL's.
  db.pragma('temp_store = MEMORY');
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SQLITE_SCHEMA_VERSION) {
    logger?.warn(
      { version: current, known: SQLITE_SCHEMA_VERSION },
      'embedded store schema is newer than this build; a newer bridge migrated it',
    );
  }
}

export class SqliteStore extends SingleWrites implements BridgeStore, StoreMeta {
  private readonly statements = new Map<string, Database.Statement>();
  private closed = false;
  /** Writes waiting for the next group commit (flush). */
  private pending: Array<{
    run: () => unknown;
    resolve: (v: unknown) => void;
    reject: (e: unknown) => void;
  }> = [];
  private flushScheduled = false;
  /** Why the last write failed for want of the store; null once a write commits. */
  private writeFailure: string | null = null;
  private readonly inode: number | undefined;

  constructor(
    readonly db: Database.Database,
    private readonly options: SqliteStoreOptions = {},
  ) {
    super();
    this.inode = options.file ? statSync(options.file).ino : undefined;
  }

  /** The schema is brought up to date when the database is opened (prepareDatabase). */
  async init(): Promise<void> {
    this.sync(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Writes already accepted are committed (or rejected) before the database closes.
    this.flush();
    this.closed = true;
    this.statements.clear();
    try {
      this.db.close();
    } finally {
      this.options.onClose?.();
    }
  }

  /**
   * For readiness: a round trip, and the file in DATA_DIR must still be the one open. Writes to a
   * file deleted underneath (DATA_DIR removed, volume swapped) would succeed and be lost on restart.
   */
  async ping(): Promise<void> {
    this.sync(() => this.stmt('SELECT 1').get());
    if (this.options.file === undefined) return;
    let ino: number | undefined;
    try {
      ino = statSync(this.options.file).ino;
    } catch {}
    if (ino !== this.inode)
      throw new StoreUnavailableError('the database file in DATA_DIR was removed or replaced');
  }

  /** Runs fn (a read), mapping SQLite failures to StoreConflictError/StoreUnavailableError. */
  private sync<T>(fn: () => T): T {
    if (this.closed) throw new StoreUnavailableError('the embedded store is closed');
    try {
      return fn();
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  // ---- writes: group commit ----

  /**
   * Every write goes through here: `fn` runs inside an explicit transaction whose COMMIT is checked,
   * and the promise settles only after that COMMIT (never an autocommit statement, whose commit
   * error better-sqlite3's Statement.get() would lose). Writes queued in the same turn of the event
   * loop share one transaction and so one fsync; each runs in a SAVEPOINT of its own, so one that
   * fails (a conflict, a stale version) is rolled back and rejected alone.
   */
  private write<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the embedded store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run: fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    if (this.closed) {
      const closed = new StoreUnavailableError('the embedded store is closed');
      for (const w of batch) w.reject(closed);
      return;
    }
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      this.stmt('BEGIN IMMEDIATE').run();
      for (const w of batch) {
        this.stmt('SAVEPOINT unit').run();
        try {
          outcomes.push({ ok: true, value: w.run() });
          this.stmt('RELEASE unit').run();
        } catch (err) {
          const error = mapSqliteError(err);
          // A full disk or an I/O error may have rolled the whole transaction back: the batch fails.
          if (error instanceof StoreUnavailableError || !this.db.inTransaction) throw error;
          this.stmt('ROLLBACK TO unit').run();
          this.stmt('RELEASE unit').run();
          outcomes.push({ ok: false, error });
        }
      }
      // The COMMIT is a statement of its own: its error (SQLITE_FULL, SQLITE_IOERR) is thrown here.
      this.stmt('COMMIT').run();
    } catch (err) {
      if (this.db.inTransaction) {
        try {
          this.stmt('ROLLBACK').run();
        } catch {}
      }
      let error = mapSqliteError(err);
      if (!(error instanceof StoreUnavailableError) && !(error instanceof StoreConflictError)) {
        // Anything that failed the batch as a whole means the store could not write it.
        error = new StoreUnavailableError('SQLite transaction failed', { cause: err });
      }
      if (error instanceof StoreUnavailableError) this.noteWriteFailure(error);
      batch.forEach((w, i) => {
        const o = outcomes[i];
        w.reject(o && !o.ok ? o.error : error);
      });
      return;
    }
    this.writeFailure = null;
    batch.forEach((w, i) => {
      const o = outcomes[i];
      if (o.ok) w.resolve(o.value);
      else w.reject(o.error);
    });
  }

  private noteWriteFailure(err: StoreUnavailableError): void {
    if (this.writeFailure === null)
      this.options.logger?.warn({ reason: err.reason }, 'embedded store cannot write');
    this.writeFailure = err.reason;
  }

  /** One unit of work (BridgeStore.commit): its statements, in order, inside the current transaction. */
  private applyUnit(writes: readonly StoreWrite[]): CommitResult {
    const result = emptyCommitResult();
    for (const { sql, params, read } of unitSteps(writes, SQLITE_DIALECT, result)) {
      const statement = this.stmt(sql);
      if (read) read(statement.all(bind(params)));
      else statement.run(bind(params));
    }
    return result;
  }

  async commit(writes: readonly StoreWrite[]): Promise<CommitResult> {
    if (writes.length === 0) {
      if (this.closed) throw new StoreUnavailableError('the embedded store is closed');
      return emptyCommitResult();
    }
    return this.write(() => this.applyUnit(writes));
  }

  writeFailureReason(): string | null {
    return this.writeFailure;
  }

  async heartbeat(): Promise<void> {
    await this.write(() => this.exec(HEARTBEAT_SQL, [new Date().toISOString()]));
  }

  /** Prepared once per SQL text: the dynamic UPDATEs have a handful of shapes. */
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private all<T>(sql: string, params: readonly unknown[]): T[] {
    return this.stmt(sql).all(bind(params)) as T[];
  }

  private one<T>(sql: string, params: readonly unknown[]): T | undefined {
    return (params.length > 0 ? this.stmt(sql).get(bind(params)) : this.stmt(sql).get()) as T | undefined;
  }

  private exec(sql: string, params: readonly unknown[]): number {
    return this.stmt(sql).run(bind(params)).changes;
  }

  // ---- store_meta ----

  async getMeta(key: string): Promise<string | null> {
    return this.sync(
      () => this.one<{ value: string }>('SELECT value FROM store_meta WHERE key = $1', [key])?.value ?? null,
    );
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.write(() =>
      this.exec(
        'INSERT INTO store_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [key, value],
      ),
    );
  }

  async insertMetaIfAbsent(key: string, value: string): Promise<void> {
    await this.write(() =>
      this.exec('INSERT INTO store_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [
        key,
        value,
      ]),
    );
  }

  // ---- users ----

  async getUser(scimId: string): Promise<UserRecord | null> {
    return this.sync(() => {
      const row = this.one<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE scim_id = $1`, [scimId]);
      return row ? toUser(row) : null;
    });
  }

  /** The rows of `select` whose `column` is one of `keys`, in one statement; none for no keys. */
  private rowsWhereIn<Row>(select: string, column: string, keys: string[]): Row[] {
    if (keys.length === 0) return [];
    return this.sync(() =>
      this.all<Row>(`${select} WHERE ${column} IN (SELECT value FROM json_each($1))`, [json(keys)]),
    );
  }

  async getUsers(scimIds: string[]): Promise<Map<string, UserRecord>> {
    const rows = this.rowsWhereIn<UserRow>(`SELECT ${USER_COLUMNS} FROM users`, 'scim_id', scimIds);
    return keyedBy(rows, (row) => row.scim_id, toUser);
  }

  async getUserWithGroups(scimId: string): Promise<UserWithGroups | null> {
    return this.sync(() => toUserWithGroups(this.all<UserWithGroupsRow>(USER_WITH_GROUPS, [scimId])));
  }

  async getUsersByUpstreamIds(upstreamUserIds: string[]): Promise<Map<string, UserRecord>> {
    const select = `SELECT ${USER_COLUMNS} FROM users`;
    const rows = this.rowsWhereIn<UserRow>(select, 'upstream_user_id', upstreamUserIds);
    return keyedBy(rows, (row) => row.upstream_user_id!, toUser);
  }

  async findUserByUserName(userName: string): Promise<UserRecord | null> {
    return this.sync(() => {
      const row = this.one<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE user_name_lower = $1`, [
        foldCase(userName),
      ]);
      return row ? toUser(row) : null;
    });
  }

  async findUsersByExternalId(externalId: string): Promise<UserRecord[]> {
    return this.sync(() =>
      this.all<UserRow>(
        `SELECT ${USER_COLUMNS} FROM users WHERE external_id = $1 ORDER BY created_at, scim_id`,
        [externalId],
      ).map(toUser),
    );
  }

  async listUsers(query: UserQuery, offset: number, limit: number): Promise<UserRecord[]> {
    const params: unknown[] = [];
    const where = userFilter(query, params);
    params.push(limit, offset);
    return this.sync(() =>
      this.all<UserRow>(
        `SELECT ${USER_COLUMNS} FROM ${usersFor(query)} ${where}
         ORDER BY created_at, scim_id LIMIT $${params.length - 1} OFFSET $${params.length}`,
        params,
      ).map(toUser),
    );
  }

  async countUsers(query: UserQuery): Promise<number> {
    const params: unknown[] = [];
    const where = userFilter(query, params);
    return this.sync(
      () => this.one<{ n: number }>(`SELECT count(*) AS n FROM ${usersFor(query)} ${where}`, params)!.n,
    );
  }

  // ---- groups ----

  async getGroup(scimId: string): Promise<GroupRecord | null> {
    return this.sync(() => {
      const row = this.one<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM groups WHERE scim_id = $1`, [scimId]);
      return row ? toGroup(row) : null;
    });
  }

  async getGroups(scimIds: string[]): Promise<Map<string, GroupRecord>> {
    const rows = this.rowsWhereIn<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM groups`, 'scim_id', scimIds);
    return keyedBy(rows, (row) => row.scim_id, toGroup);
  }

  async findGroupByDisplayName(displayName: string): Promise<GroupRecord | null> {
    return this.sync(() => {
      const row = this.one<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM groups WHERE display_name_lower = $1`, [
        foldCase(displayName),
      ]);
      return row ? toGroup(row) : null;
    });
  }

  async findGroupsByExternalId(externalId: string): Promise<GroupRecord[]> {
    return this.sync(() =>
      this.all<GroupRow>(
        `SELECT ${GROUP_COLUMNS} FROM groups WHERE external_id = $1 ORDER BY created_at, scim_id`,
        [externalId],
      ).map(toGroup),
    );
  }

  // ---- memberships ----

  async groupsOfUser(userScimId: string): Promise<string[]> {
    return this.sync(() =>
      this.all<{ group_scim_id: string }>(
        'SELECT group_scim_id FROM memberships WHERE user_scim_id = $1 ORDER BY group_scim_id',
        [userScimId],
      ).map((r) => r.group_scim_id),
    );
  }

  async groupsOfUsers(userScimIds: string[]): Promise<Map<string, string[]>> {
    if (userScimIds.length === 0) return new Map();
    return this.sync(() =>
      groupByUser(
        this.all<{ user_scim_id: string; group_scim_id: string }>(
          `SELECT user_scim_id, group_scim_id FROM memberships
           WHERE user_scim_id IN (SELECT value FROM json_each($1)) ORDER BY group_scim_id`,
          [json(userScimIds)],
        ),
      ),
    );
  }

  async membersOfGroup(groupScimId: string): Promise<string[]> {
    return this.sync(() =>
      this.all<{ user_scim_id: string }>(
        'SELECT user_scim_id FROM memberships WHERE group_scim_id = $1 ORDER BY user_scim_id',
        [groupScimId],
      ).map((r) => r.user_scim_id),
    );
  }

  async groupIdsAfter(after: string, limit: number): Promise<string[]> {
    return this.sync(() =>
      this.all<{ scim_id: string }>(GROUP_IDS_AFTER, [after, limit]).map((r) => r.scim_id),
    );
  }

  // ---- intents ----

  async intentsOf(resource: string): Promise<IntentRecord[]> {
    return this.sync(() =>
      this.all<IntentRow>(
        `SELECT ${INTENT_COLUMNS} FROM intents WHERE resource = $1 ORDER BY created_at, id`,
        [resource],
      ).map(toIntent),
    );
  }

  async dueIntents(now: Date, limit: number): Promise<IntentRecord[]> {
    return this.sync(() =>
      this.all<IntentRow>(
        `SELECT ${INTENT_COLUMNS} FROM intents WHERE next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2`,
        [now.toISOString(), limit],
      ).map(toIntent),
    );
  }

  async recordIntentAttempt(id: string, error: string, nextAttemptAt: Date): Promise<void> {
    await this.write(() =>
      this.exec(
        'UPDATE intents SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1',
        [id, shortError(error), nextAttemptAt.toISOString()],
      ),
    );
  }

  async countIntents(): Promise<number> {
    return this.sync(() => this.one<{ n: number }>('SELECT count(*) AS n FROM intents', [])!.n);
  }

  // ---- audit trail and counts (audit-sql.ts) ----

  /**
   * One page, read AUDIT_SCAN_CHUNK ids at a time (the loop turns between chunks) until the page
   * is full: whatever the filters, no statement scans more than one chunk of the trail.
   */
  async listAudit(query: AuditQuery): Promise<AuditRecord[]> {
    const end = (dir: 'ASC' | 'DESC') =>
      this.one<{ id: number }>(`SELECT id FROM audit ORDER BY id ${dir} LIMIT 1`, [])?.id;
    const [first, last] = this.sync(() => [end('ASC'), end('DESC')]);
    if (first === undefined || last === undefined) return [];
    // The ids still to read: (low, high), exclusive.
    let low = Math.max(first - 1, query.afterId === undefined ? -1 : Number(query.afterId));
    let high = Math.min(last + 1, query.beforeId === undefined ? last + 1 : Number(query.beforeId));
    const asc = query.order === 'asc';
    const records: AuditRecord[] = [];
    while (high - low > 1 && records.length < query.limit) {
      const window = asc
        ? { afterId: String(low), beforeId: String(Math.min(high, low + 1 + AUDIT_SCAN_CHUNK)) }
        : { afterId: String(Math.max(low, high - 1 - AUDIT_SCAN_CHUNK)), beforeId: String(high) };
      const { sql, params } = auditListSql(
        { ...query, ...window, limit: query.limit - records.length },
        { unindexedTime: true },
      );
      const rows = this.sync(() => this.all<AuditRow>(sql, params));
      for (const row of rows) records.push(toAuditRecord(row));
      if (asc) low = Number(window.beforeId) - 1;
      else high = Number(window.afterId) + 1;
      if (records.length < query.limit && high - low > 1) await nextTurn();
    }
    return records;
  }

  /**
   * The window in chunks of AUDIT_TALLY_CHUNK records in (at, id) order through the time index:
   * where a chunk ends is found by walking the index alone, then the chunk is aggregated; the
   * loop turns between chunks, and the groups of all chunks are summed here.
   */
  async auditTally(since: string, until: string, bucketSeconds: number): Promise<AuditTallyRow[]> {
    const minutes = bucketSeconds / 60;
    if (!Number.isInteger(minutes) || minutes < 1 || 1440 % minutes !== 0)
      throw new RangeError(`bucket of ${bucketSeconds} s: must be whole minutes that divide a day`);
    const sums = new Map<string, AuditTallyRow>();
    let from: { at: string; id: number } = { at: since, id: 0 };
    for (;;) {
      const end = this.sync(
        () =>
          this.all<{ at: string; id: number }>(AUDIT_TALLY_BOUNDARY, [
            from.at,
            from.id,
            until,
            AUDIT_TALLY_CHUNK,
          ])[0],
      );
      const to = end ?? { at: until, id: 0 };
      const rows = this.sync(() =>
        this.all<{ day: string; slot: number; actor: string; kind: number; class: number; n: number }>(
          AUDIT_TALLY_SQLITE,
          [from.at, from.id, to.at, to.id, minutes],
        ),
      );
      for (const row of rows) {
        const bucket = Date.parse(`${row.day}T00:00:00.000Z`) + row.slot * bucketSeconds * 1000;
        const key = `${bucket}\u0000${row.actor}\u0000${row.kind}\u0000${row.class}`;
        const sum = sums.get(key);
        if (sum) sum.count += row.n;
        else sums.set(key, toTallyRow(bucket, row));
      }
      if (!end) break;
      from = end;
      await nextTurn();
    }
    return [...sums.values()];
  }

  async auditActors(limit: number): Promise<AuditActor[]> {
    return this.sync(() =>
      this.all<{ actor: string; last_at: string; writes: number; errors: number }>(AUDIT_ACTORS, [limit]).map(
        toAuditActor,
      ),
    );
  }

  async pruneAudit(before: string, limit: number): Promise<number> {
    return this.write(() => {
      this.exec(PRUNE_AUDIT_SUBJECTS, [before, limit]);
      return this.exec(PRUNE_AUDIT, [before, limit]);
    });
  }

  // ---- console sessions ----

  async revokeAdminSession(nonce: string, expiresAt: string): Promise<void> {
    await this.write(() => {
      this.exec(PRUNE_ADMIN_SESSIONS, [new Date().toISOString()]);
      this.exec(REVOKE_ADMIN_SESSION, [nonce, expiresAt]);
    });
  }

  async adminSessionRevoked(nonce: string): Promise<boolean> {
    return this.sync(() => this.one(ADMIN_SESSION_REVOKED, [nonce]) !== undefined);
  }

  // ---- leader status ----

  async publishLeaderStatus(role: string, replica: string, status: Record<string, unknown>): Promise<void> {
    await this.write(() =>
      this.exec(PUBLISH_LEADER_STATUS, [role, replica, new Date().toISOString(), JSON.stringify(status)]),
    );
  }

  async leaderStatus(role: string): Promise<PublishedLeaderStatus | null> {
    return this.sync(() => {
      const row = this.one<{ replica: string; published_at: string; status: string }>(
        'SELECT replica, published_at, status FROM leader_status WHERE role = $1',
        [role],
      );
      if (!row) return null;
      return {
        role,
        replica: row.replica,
        publishedAt: row.published_at,
        ageMs: Math.max(0, Date.now() - Date.parse(row.published_at)),
        status: JSON.parse(row.status) as Record<string, unknown>,
      };
    });
  }

  /** row_counts (kept by triggers) for the totals; the partial index users_inactive_idx for the rest. */
  async directoryCounts(): Promise<DirectoryCounts> {
    return this.sync(() => {
      const counts = new Map(
        this.all<{ name: string; n: number }>('SELECT name, n FROM row_counts', []).map((r) => [r.name, r.n]),
      );
      const deactivated = this.one<{ n: number }>('SELECT count(*) AS n FROM users WHERE active = 0', [])!.n;
      return {
        users: counts.get('users') ?? 0,
        deactivated,
        groups: counts.get('groups') ?? 0,
        memberships: counts.get('memberships') ?? 0,
      };
    });
  }

  // ---- drift snapshot (drift-sql.ts) ----

  protected readonly read: ReadSql = async <T>(sql: string, params: unknown[]) =>
    this.sync(() => this.all<T>(sql, params));

  protected async writeAll(statements: Statement[]): Promise<void> {
    await this.write(() => {
      for (const s of statements) this.exec(s.sql, s.params);
    });
  }
}
