import type { Logger } from 'pino';
import type { SqlDriver } from './driver.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** One statement per entry: the driver sends each as one parameterised query. */
  readonly statements: readonly string[];
}

/** The advisory lock that makes one transaction at a time fold row_counts (migration 14). */
const ROW_COUNTS_LOCK = `hashtext('volc-scim-bridge/row_counts/' || coalesce(current_schema(), ''))`;

// Append only; never edit a migration that has shipped. Each version is the same schema change,
// under the same name, as the embedded store's migration of that number (sqlite-migrations.ts).
// Versions 5 to 9 are unused: migrate() compares the set of applied versions, so a gap is no
// missing step. Constraint names are spelled out because sql-store.ts maps unique violations to
// StoreConflictError fields by constraint name.
// user_name_lower/display_name_lower hold the JS-folded name (see fold-case.ts).
// Replicas still running the previous version keep their statements prepared (postgres-driver.ts
// StatementNames): adding a column is harmless (every column list is explicit), but changing the type
// of a column those statements return makes PostgreSQL refuse them ("cached plan must not change
// result type") until those replicas restart. Such a change needs a new column instead.
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'users, groups, memberships',
    statements: [
      `CREATE TABLE users (
        scim_id text NOT NULL CONSTRAINT users_pkey PRIMARY KEY,
        upstream_user_id text CONSTRAINT users_upstream_user_id_key UNIQUE,
        user_name text NOT NULL,
        user_name_lower text NOT NULL CONSTRAINT users_user_name_lower_key UNIQUE,
        external_id text,
        active boolean NOT NULL,
        state text NOT NULL CONSTRAINT users_state_check CHECK (state IN ('pending', 'ready')),
        attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
        tombstone_group_ids jsonb NOT NULL DEFAULT '[]'::jsonb,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
      'CREATE INDEX users_external_id_idx ON users (external_id)',
      // Serves the (created_at, scim_id) order of listUsers without a sort.
      'CREATE INDEX users_created_at_scim_id_idx ON users (created_at, scim_id)',
      // Detached users (pending creates, tombstones) are few; reconciliation lists them often.
      'CREATE INDEX users_detached_idx ON users (created_at, scim_id) WHERE upstream_user_id IS NULL',
      `CREATE TABLE groups (
        scim_id text NOT NULL CONSTRAINT groups_pkey PRIMARY KEY,
        group_name text NOT NULL,
        display_name text NOT NULL,
        display_name_lower text NOT NULL CONSTRAINT groups_display_name_lower_key UNIQUE,
        external_id text,
        attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
      'CREATE INDEX groups_external_id_idx ON groups (external_id)',
      // No foreign keys: members and groups created outside the bridge have no record here.
      `CREATE TABLE memberships (
        group_scim_id text NOT NULL,
        user_scim_id text NOT NULL,
        CONSTRAINT memberships_pkey PRIMARY KEY (group_scim_id, user_scim_id)
      )`,
      // (user, group) rather than (user): groupsOfUser becomes an ordered index-only scan.
      'CREATE INDEX memberships_user_idx ON memberships (user_scim_id, group_scim_id)',
    ],
  },
  {
    version: 2,
    name: 'store_meta: the CloudIdentity the store mirrors',
    statements: [
      `CREATE TABLE store_meta (
        key text NOT NULL CONSTRAINT store_meta_pkey PRIMARY KEY,
        value text NOT NULL
      )`,
    ],
  },
  {
    version: 3,
    name: 'intents: multi-step operations in flight (the reconciler settles them)',
    statements: [
      `CREATE TABLE intents (
        id text NOT NULL CONSTRAINT intents_pkey PRIMARY KEY,
        resource text NOT NULL,
        kind text NOT NULL,
        payload jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        last_error text
      )`,
      'CREATE INDEX intents_resource_idx ON intents (resource, created_at)',
      'CREATE INDEX intents_due_idx ON intents (next_attempt_at)',
    ],
  },
  {
    version: 4,
    name: 'audit trail',
    statements: [
      `CREATE TABLE audit (
        id bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT audit_pkey PRIMARY KEY,
        at timestamptz NOT NULL,
        actor text NOT NULL,
        client_ip text,
        request_id text,
        method text NOT NULL,
        resource_type text,
        resource_id text,
        resource_name text,
        resource_name_lower text,
        status integer NOT NULL,
        scim_type text,
        detail text,
        duration_ms double precision NOT NULL,
        changes jsonb NOT NULL DEFAULT '{}'::jsonb,
        upstream jsonb NOT NULL DEFAULT '[]'::jsonb
      )`,
      'CREATE INDEX audit_at_idx ON audit (at)',
      'CREATE INDEX audit_resource_id_idx ON audit (resource_id, id)',
      'CREATE INDEX audit_resource_name_idx ON audit (resource_name_lower, id)',
      'CREATE INDEX audit_actor_idx ON audit (actor, at)',
      'CREATE INDEX users_inactive_idx ON users (scim_id) WHERE NOT active',
    ],
  },
  {
    version: 10,
    name: 'audit_subjects: the other resources an audit record concerns',
    statements: [
      `CREATE TABLE audit_subjects (
        subject_lower text NOT NULL,
        audit_id bigint NOT NULL,
        CONSTRAINT audit_subjects_pkey PRIMARY KEY (subject_lower, audit_id)
      )`,
      'CREATE INDEX audit_subjects_audit_idx ON audit_subjects (audit_id)',
      // The record of an operation begun (status 102), replaced by its request's final record.
      'CREATE INDEX audit_started_idx ON audit (request_id) WHERE status = 102',
    ],
  },
  {
    version: 11,
    name: 'console: per-actor audit counters, bounded audit indexes, revoked console sessions',
    statements: [
      // Per-actor totals of the audit trail, kept by triggers in the writing transaction (however
      // the rows are written), so the console's overview reads a few rows instead of grouping the
      // whole trail. Each actor is spread over 32 rows (stripes), chosen by the writing
      // connection, so concurrent writers for one actor do not queue on one row lock.
      `CREATE TABLE audit_actors (
        actor text NOT NULL,
        stripe integer NOT NULL,
        writes bigint NOT NULL,
        errors bigint NOT NULL,
        last_at timestamptz NOT NULL,
        CONSTRAINT audit_actors_pkey PRIMARY KEY (actor, stripe)
      )`,
      `INSERT INTO audit_actors (actor, stripe, writes, errors, last_at)
        SELECT actor, 0, count(*), count(*) FILTER (WHERE status >= 400), max(at) FROM audit GROUP BY actor`,
      `CREATE FUNCTION audit_actors_added() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO audit_actors AS a (actor, stripe, writes, errors, last_at)
          VALUES (NEW.actor, pg_backend_pid() % 32, 1, CASE WHEN NEW.status >= 400 THEN 1 ELSE 0 END, NEW.at)
          ON CONFLICT (actor, stripe) DO UPDATE SET writes = a.writes + 1,
            errors = a.errors + excluded.errors, last_at = greatest(a.last_at, excluded.last_at);
        RETURN NULL;
      END $$`,
      'CREATE TRIGGER audit_actors_insert AFTER INSERT ON audit FOR EACH ROW EXECUTE FUNCTION audit_actors_added()',
      // Retention deletes in batches: one statement-level pass per batch, taking each actor's
      // counters in key order (no deadlock between batches). Only an actor's sums are meaningful
      // (a row does not record its stripe): the removed counts are taken off its stripes in order.
      `CREATE FUNCTION audit_actors_removed() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        gone record;
        s record;
        left_n bigint;
        left_e bigint;
      BEGIN
        FOR gone IN
          SELECT actor, count(*) AS n, count(*) FILTER (WHERE status >= 400) AS e
          FROM old_rows GROUP BY actor ORDER BY actor
        LOOP
          left_n := gone.n;
          left_e := gone.e;
          FOR s IN
            SELECT stripe, writes, errors FROM audit_actors WHERE actor = gone.actor
            ORDER BY stripe FOR UPDATE
          LOOP
            EXIT WHEN left_n <= 0 AND left_e <= 0;
            UPDATE audit_actors SET writes = writes - least(s.writes, left_n),
              errors = errors - least(s.errors, left_e)
              WHERE actor = gone.actor AND stripe = s.stripe;
            left_n := left_n - least(s.writes, left_n);
            left_e := left_e - least(s.errors, left_e);
          END LOOP;
          DELETE FROM audit_actors WHERE actor = gone.actor AND writes <= 0 AND errors <= 0;
        END LOOP;
        RETURN NULL;
      END $$`,
      `CREATE TRIGGER audit_actors_delete AFTER DELETE ON audit REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION audit_actors_removed()`,
      // An actor's records newest first (and export pages) as an index range, without a sort.
      'DROP INDEX audit_actor_idx',
      'CREATE INDEX audit_actor_id_idx ON audit (actor, id)',
      // Failures newest first (the console's "recent failures") without scanning the successes.
      'CREATE INDEX audit_errors_idx ON audit (id) WHERE status >= 400',
      // Console sessions signed out before they expire; every request's cookie is checked here.
      `CREATE TABLE admin_revoked_sessions (
        nonce text NOT NULL CONSTRAINT admin_revoked_sessions_pkey PRIMARY KEY,
        expires_at timestamptz NOT NULL
      )`,
      'CREATE INDEX admin_revoked_sessions_expires_idx ON admin_revoked_sessions (expires_at)',
    ],
  },
  {
    version: 12,
    name: 'drift snapshot: accounts no IdP manages, their groups, reported drift',
    statements: [
      // The drift pass's walk of CloudIdentity (directory/unmanaged.ts): where it stands (one JSON
      // row, so a new leader goes on from there) and what it found, so every replica serves the
      // same snapshot. Times are ISO-8601 UTC text, as CloudIdentity and the walk state them.
      `CREATE TABLE drift_sweep (
        id integer NOT NULL CONSTRAINT drift_sweep_pkey PRIMARY KEY CONSTRAINT drift_sweep_one CHECK (id = 1),
        state text NOT NULL
      )`,
      `CREATE TABLE drift_unmanaged (
        user_id text NOT NULL CONSTRAINT drift_unmanaged_pkey PRIMARY KEY,
        user_name text NOT NULL,
        display_name text,
        email text,
        source text,
        created_time text,
        seen_sweep integer NOT NULL,
        seen_at text NOT NULL
      )`,
      'CREATE INDEX drift_unmanaged_name_idx ON drift_unmanaged (user_name, user_id)',
      'CREATE INDEX drift_unmanaged_sweep_idx ON drift_unmanaged (seen_sweep)',
      `CREATE TABLE drift_unmanaged_groups (
        user_id text NOT NULL,
        group_id text NOT NULL,
        group_name text NOT NULL,
        seen_sweep integer NOT NULL,
        CONSTRAINT drift_unmanaged_groups_pkey PRIMARY KEY (user_id, group_id)
      )`,
      'CREATE INDEX drift_unmanaged_groups_sweep_idx ON drift_unmanaged_groups (seen_sweep)',
      // Findings only an operator can resolve (renamed accounts, tombstone collisions), one per
      // kind and SCIM user, kept until a pass checks that user again and no longer finds them.
      `CREATE TABLE drift_reported (
        kind text NOT NULL,
        scim_id text NOT NULL,
        upstream_user_id text,
        upstream_user_name text,
        detail text NOT NULL,
        found_at text NOT NULL,
        CONSTRAINT drift_reported_pkey PRIMARY KEY (scim_id, kind)
      )`,
    ],
  },
  {
    version: 13,
    name: 'leader_status: what the reconciler leader publishes for every replica',
    statements: [
      // One row per leadership role: the leader's last status and when it was published (by the
      // database's clock, so a replica with a skewed clock still reads the right age).
      `CREATE TABLE leader_status (
        role text NOT NULL CONSTRAINT leader_status_pkey PRIMARY KEY,
        replica text NOT NULL,
        published_at timestamptz NOT NULL,
        status jsonb NOT NULL
      )`,
    ],
  },
  {
    version: 14,
    name: 'audit time index covering the activity tally; directory counters kept by triggers',
    statements: [
      // The activity tally reads only these columns of a time range, so it is an index-only scan
      // (audit is append-only: its visibility map stays current); (at, id) also serves the
      // retention pass's ORDER BY at, id. Built inside the migration's transaction, so audit writes
      // wait for it (seconds per million records); IF NOT EXISTS lets an operator with a long trail
      // build it beforehand with CREATE INDEX CONCURRENTLY (README, Upgrade).
      'CREATE INDEX IF NOT EXISTS audit_at_cover_idx ON audit (at, id) INCLUDE (status, duration_ms, actor)',
      'DROP INDEX IF EXISTS audit_at_idx',
      // The console's directory counts without count(*) (a sequential scan of each table). Every
      // writing statement appends its delta (one row per statement and counter, never an update of
      // a shared row, so concurrent creates do not queue on one hot row); a read sums them. Now and
      // then a writing statement folds the rows into one per counter (row_counts_compact), one
      // transaction at a time (a transaction-scoped advisory lock, tried, never waited for).
      // Counters: users, users_inactive, groups, memberships.
      `CREATE TABLE row_counts (
        name text NOT NULL,
        n bigint NOT NULL
      )`,
      `CREATE FUNCTION row_counts_compact() RETURNS void LANGUAGE sql SET search_path FROM CURRENT AS $$
        WITH gone AS (DELETE FROM row_counts RETURNING name, n)
        INSERT INTO row_counts (name, n) SELECT name, sum(n) FROM gone GROUP BY name
      $$`,
      `CREATE FUNCTION row_counts_changed() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
      DECLARE
        sign integer := CASE TG_OP WHEN 'DELETE' THEN -1 ELSE 1 END;
      BEGIN
        IF TG_OP = 'UPDATE' THEN
          -- users only: (re)activations and deactivations
          INSERT INTO row_counts (name, n)
            SELECT 'users_inactive', d FROM (
              SELECT (SELECT count(*) FROM new_rows WHERE NOT active)
                   - (SELECT count(*) FROM old_rows WHERE NOT active) AS d
            ) delta WHERE d <> 0;
        ELSE
          INSERT INTO row_counts (name, n) SELECT TG_TABLE_NAME, sign * count(*) FROM changed HAVING count(*) > 0;
          IF TG_TABLE_NAME = 'users' THEN
            INSERT INTO row_counts (name, n)
              SELECT 'users_inactive', sign * count(*) FROM changed WHERE NOT active HAVING count(*) > 0;
          END IF;
        END IF;
        IF random() < 1.0 / 32
          AND pg_try_advisory_xact_lock(${ROW_COUNTS_LOCK})
        THEN
          PERFORM row_counts_compact();
        END IF;
        RETURN NULL;
      END
      $$`,
      // TRUNCATE fires no DELETE trigger: it clears the table's counters (after any compaction in
      // progress has committed, so the row it leaves is cleared too).
      `CREATE FUNCTION row_counts_truncated() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock(${ROW_COUNTS_LOCK});
        DELETE FROM row_counts
          WHERE name = TG_TABLE_NAME OR (TG_TABLE_NAME = 'users' AND name = 'users_inactive');
        RETURN NULL;
      END
      $$`,
      ...['users', 'groups', 'memberships'].flatMap((table) => [
        `CREATE TRIGGER ${table}_counted_truncate AFTER TRUNCATE ON ${table}
          FOR EACH STATEMENT EXECUTE FUNCTION row_counts_truncated()`,
        `CREATE TRIGGER ${table}_counted_insert AFTER INSERT ON ${table}
          REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION row_counts_changed()`,
        `CREATE TRIGGER ${table}_counted_delete AFTER DELETE ON ${table}
          REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION row_counts_changed()`,
      ]),
      `CREATE TRIGGER users_counted_update AFTER UPDATE ON users
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION row_counts_changed()`,
      // After the triggers: creating them locked the tables against writes until this transaction
      // commits, so every row is counted exactly once (committed before: here; after: by a trigger).
      `INSERT INTO row_counts (name, n)
        SELECT 'users', count(*) FROM users
        UNION ALL SELECT 'users_inactive', count(*) FROM users WHERE NOT active
        UNION ALL SELECT 'groups', count(*) FROM groups
        UNION ALL SELECT 'memberships', count(*) FROM memberships`,
    ],
  },
];

/**
 * Applies the migrations not yet recorded in schema_migrations, all in one transaction. The
 * transaction-scoped advisory lock serialises replicas starting together: the loser waits, then
 * (READ COMMITTED, fresh snapshot per statement) sees the winner's rows and applies nothing.
 * The lock key includes the schema so bridges sharing a database in separate schemas don't wait
 * on each other. Returns the versions applied by this call.
 */
export async function migrate(db: SqlDriver, logger?: Logger): Promise<number[]> {
  const { applied, unknown } = await db.transaction(async (tx) => {
    await tx.query(
      `SELECT pg_advisory_xact_lock(hashtext('volc-scim-bridge/migrations/' || coalesce(current_schema(), '')))`,
    );
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer NOT NULL PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const rows = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((r) => r.version));
    const applied: Migration[] = [];
    for (const migration of MIGRATIONS) {
      if (done.has(migration.version)) continue;
      for (const statement of migration.statements) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      applied.push(migration);
    }
    const known = new Set(MIGRATIONS.map((m) => m.version));
    return { applied, unknown: [...done].filter((v) => !known.has(v)) };
  });
  // Logged after COMMIT so the log never reports a migration that rolled back.
  for (const m of applied) logger?.info({ version: m.version, name: m.name }, 'store migration applied');
  // A newer build migrated ahead of this one (rolling deploy); its migrations must stay additive.
  if (unknown.length > 0)
    logger?.warn({ versions: unknown }, 'store schema has migrations this build does not know');
  return applied.map((m) => m.version);
}
