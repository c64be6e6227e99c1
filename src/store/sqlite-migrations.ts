// The embedded store's schema (SQLite), versioned by PRAGMA user_version. Append only; never edit a
// migration that has shipped. Each version is the same schema change, under the same name, as
// PostgreSQL's migration of that number (migrations.ts; a test holds the two lists equal), and the
// tables and columns are the same, so the SQL and the row mapping are shared (sql-common.ts); the
// differences are SQLite's types:
// - STRICT tables, so a value of the wrong type is refused as PostgreSQL would refuse it;
// - JSON as TEXT, booleans as 0/1 with a CHECK, timestamps as ISO-8601 UTC text with milliseconds
//   (strftime '%Y-%m-%dT%H:%M:%fZ'), which sorts like the time it names;
// - user_name_lower/display_name_lower hold the JS-folded name (fold-case.ts): SQLite's NOCASE
//   folds ASCII only.
// Unique constraints are declared in the reverse of PostgreSQL's column order because SQLite checks
// the last declared unique index first: a row breaking several reports the same field as PostgreSQL
// (scimId, then upstreamUserId, then userName), which the store contract checks.
import type Database from 'better-sqlite3';

export interface SqliteMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** What the SQLite store writes for "now" (updated_at), matching JS toISOString(). */
export const SQLITE_NOW = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`;

export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    name: 'users, groups, memberships',
    sql: `
      CREATE TABLE users (
        scim_id TEXT NOT NULL,
        upstream_user_id TEXT,
        user_name TEXT NOT NULL,
        user_name_lower TEXT NOT NULL,
        external_id TEXT,
        active INTEGER NOT NULL CHECK (active IN (0, 1)),
        state TEXT NOT NULL CHECK (state IN ('pending', 'ready')),
        attributes TEXT NOT NULL DEFAULT '{}',
        tombstone_group_ids TEXT NOT NULL DEFAULT '[]',
        version INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL DEFAULT (${SQLITE_NOW}),
        updated_at TEXT NOT NULL DEFAULT (${SQLITE_NOW}),
        CONSTRAINT users_user_name_lower_key UNIQUE (user_name_lower),
        CONSTRAINT users_upstream_user_id_key UNIQUE (upstream_user_id),
        CONSTRAINT users_pkey PRIMARY KEY (scim_id)
      ) STRICT;
      CREATE INDEX users_external_id_idx ON users (external_id);
      CREATE INDEX users_created_at_scim_id_idx ON users (created_at, scim_id);
      -- Detached users (tombstones, pending creates): every SCIM list page counts and pages them.
      -- state first, so count(state = 'ready') is an index-only range and a page needs no sort.
      CREATE INDEX users_detached_idx ON users (state, created_at, scim_id) WHERE upstream_user_id IS NULL;
      CREATE TABLE groups (
        scim_id TEXT NOT NULL,
        group_name TEXT NOT NULL,
        display_name TEXT NOT NULL,
        display_name_lower TEXT NOT NULL,
        external_id TEXT,
        attributes TEXT NOT NULL DEFAULT '{}',
        version INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL DEFAULT (${SQLITE_NOW}),
        updated_at TEXT NOT NULL DEFAULT (${SQLITE_NOW}),
        CONSTRAINT groups_display_name_lower_key UNIQUE (display_name_lower),
        CONSTRAINT groups_pkey PRIMARY KEY (scim_id)
      ) STRICT;
      CREATE INDEX groups_external_id_idx ON groups (external_id);
      CREATE TABLE memberships (
        group_scim_id TEXT NOT NULL,
        user_scim_id TEXT NOT NULL,
        CONSTRAINT memberships_pkey PRIMARY KEY (group_scim_id, user_scim_id)
      ) STRICT;
      CREATE INDEX memberships_user_idx ON memberships (user_scim_id, group_scim_id);
      -- Rows each table held at the last commit, kept by triggers in the writing transaction: a start
      -- that finds fewer rows than recorded (tables emptied, file swapped) refuses (data-dir.ts).
      CREATE TABLE row_counts (
        name TEXT NOT NULL PRIMARY KEY,
        n INTEGER NOT NULL
      ) STRICT;
      INSERT INTO row_counts (name, n) VALUES ('users', 0), ('groups', 0), ('memberships', 0);
      CREATE TRIGGER users_counted_insert AFTER INSERT ON users
        BEGIN UPDATE row_counts SET n = n + 1 WHERE name = 'users'; END;
      CREATE TRIGGER users_counted_delete AFTER DELETE ON users
        BEGIN UPDATE row_counts SET n = n - 1 WHERE name = 'users'; END;
      CREATE TRIGGER groups_counted_insert AFTER INSERT ON groups
        BEGIN UPDATE row_counts SET n = n + 1 WHERE name = 'groups'; END;
      CREATE TRIGGER groups_counted_delete AFTER DELETE ON groups
        BEGIN UPDATE row_counts SET n = n - 1 WHERE name = 'groups'; END;
      CREATE TRIGGER memberships_counted_insert AFTER INSERT ON memberships
        BEGIN UPDATE row_counts SET n = n + 1 WHERE name = 'memberships'; END;
      CREATE TRIGGER memberships_counted_delete AFTER DELETE ON memberships
        BEGIN UPDATE row_counts SET n = n - 1 WHERE name = 'memberships'; END;
    `,
  },
  {
    version: 2,
    name: 'store_meta: the CloudIdentity the store mirrors',
    sql: `
      CREATE TABLE store_meta (
        key TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: 'intents: multi-step operations in flight (the reconciler settles them)',
    sql: `
      CREATE TABLE intents (
        id TEXT NOT NULL PRIMARY KEY,
        resource TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL DEFAULT (${SQLITE_NOW}),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL DEFAULT (${SQLITE_NOW}),
        last_error TEXT
      ) STRICT;
      CREATE INDEX intents_resource_idx ON intents (resource, created_at);
      CREATE INDEX intents_due_idx ON intents (next_attempt_at);
    `,
  },
  {
    version: 4,
    name: 'audit trail',
    sql: `
      -- AUTOINCREMENT: ids are never reused after retention deletes the newest rows' predecessors,
      -- so a paging cursor (an id) keeps meaning the same place.
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        client_ip TEXT,
        request_id TEXT,
        method TEXT NOT NULL,
        resource_type TEXT,
        resource_id TEXT,
        resource_name TEXT,
        resource_name_lower TEXT,
        status INTEGER NOT NULL,
        scim_type TEXT,
        detail TEXT,
        duration_ms REAL NOT NULL,
        changes TEXT NOT NULL DEFAULT '{}',
        upstream TEXT NOT NULL DEFAULT '[]'
      ) STRICT;
      CREATE INDEX audit_at_idx ON audit (at);
      CREATE INDEX audit_resource_id_idx ON audit (resource_id, id);
      CREATE INDEX audit_resource_name_idx ON audit (resource_name_lower, id);
      CREATE INDEX audit_actor_idx ON audit (actor, at);
      -- The console's "deactivated" count without a table scan.
      CREATE INDEX users_inactive_idx ON users (scim_id) WHERE active = 0;
    `,
  },
  {
    version: 10,
    name: 'audit_subjects: the other resources an audit record concerns',
    sql: `
      -- A query by a resource finds the records whose subjects include it (e.g. the members a
      -- group change added or removed); pruning deletes a record's subjects with it.
      CREATE TABLE audit_subjects (
        subject_lower TEXT NOT NULL,
        audit_id INTEGER NOT NULL,
        PRIMARY KEY (subject_lower, audit_id)
      ) STRICT;
      CREATE INDEX audit_subjects_audit_idx ON audit_subjects (audit_id);
      -- The record of an operation begun (status 102), replaced by its request's final record.
      CREATE INDEX audit_started_idx ON audit (request_id) WHERE status = 102;
      `,
  },
  {
    version: 11,
    name: 'console: per-actor audit counters, bounded audit indexes, revoked console sessions',
    sql: `
      -- Per-actor totals of the audit trail, kept by triggers in the transaction that writes or
      -- prunes the rows (however they are written), so the console's overview reads a few rows
      -- instead of grouping the whole trail. stripe is always 0 here (one writer); PostgreSQL
      -- spreads each actor over stripes so concurrent writers do not queue on one row.
      CREATE TABLE audit_actors (
        actor TEXT NOT NULL,
        stripe INTEGER NOT NULL,
        writes INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        last_at TEXT NOT NULL,
        PRIMARY KEY (actor, stripe)
      ) STRICT;
      INSERT INTO audit_actors (actor, stripe, writes, errors, last_at)
        SELECT actor, 0, count(*), sum(status >= 400), max(at) FROM audit GROUP BY actor;
      CREATE TRIGGER audit_actors_insert AFTER INSERT ON audit BEGIN
        INSERT INTO audit_actors (actor, stripe, writes, errors, last_at)
          VALUES (NEW.actor, 0, 1, NEW.status >= 400, NEW.at)
          ON CONFLICT (actor, stripe) DO UPDATE SET writes = writes + 1,
            errors = errors + excluded.errors, last_at = max(last_at, excluded.last_at);
      END;
      CREATE TRIGGER audit_actors_delete AFTER DELETE ON audit BEGIN
        UPDATE audit_actors SET writes = writes - 1, errors = errors - (OLD.status >= 400)
          WHERE actor = OLD.actor AND stripe = 0;
        DELETE FROM audit_actors WHERE actor = OLD.actor AND stripe = 0 AND writes <= 0;
      END;
      -- An actor's records newest first (and export pages) as an index range, without a sort.
      DROP INDEX audit_actor_idx;
      CREATE INDEX audit_actor_id_idx ON audit (actor, id);
      -- Failures newest first (the console's "recent failures") without scanning the successes.
      CREATE INDEX audit_errors_idx ON audit (id) WHERE status >= 400;
      -- Console sessions signed out before they expire; every request's cookie is checked here.
      CREATE TABLE admin_revoked_sessions (
        nonce TEXT NOT NULL PRIMARY KEY,
        expires_at TEXT NOT NULL
      ) STRICT;
      CREATE INDEX admin_revoked_sessions_expires_idx ON admin_revoked_sessions (expires_at);
    `,
  },
  {
    version: 12,
    name: 'drift snapshot: accounts no IdP manages, their groups, reported drift',
    sql: `
      -- The drift pass's walk of CloudIdentity (directory/unmanaged.ts): where it stands and what
      -- it found, so the snapshot survives a restart.
      CREATE TABLE drift_sweep (
        id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
        state TEXT NOT NULL
      ) STRICT;
      CREATE TABLE drift_unmanaged (
        user_id TEXT NOT NULL PRIMARY KEY,
        user_name TEXT NOT NULL,
        display_name TEXT,
        email TEXT,
        source TEXT,
        created_time TEXT,
        seen_sweep INTEGER NOT NULL,
        seen_at TEXT NOT NULL
      ) STRICT;
      CREATE INDEX drift_unmanaged_name_idx ON drift_unmanaged (user_name, user_id);
      CREATE INDEX drift_unmanaged_sweep_idx ON drift_unmanaged (seen_sweep);
      CREATE TABLE drift_unmanaged_groups (
        user_id TEXT NOT NULL,
        group_id TEXT NOT NULL,
        group_name TEXT NOT NULL,
        seen_sweep INTEGER NOT NULL,
        PRIMARY KEY (user_id, group_id)
      ) STRICT;
      CREATE INDEX drift_unmanaged_groups_sweep_idx ON drift_unmanaged_groups (seen_sweep);
      -- Findings only an operator can resolve (renamed accounts, tombstone collisions), one per
      -- kind and SCIM user, kept until a pass checks that user again and no longer finds them.
      CREATE TABLE drift_reported (
        kind TEXT NOT NULL,
        scim_id TEXT NOT NULL,
        upstream_user_id TEXT,
        upstream_user_name TEXT,
        detail TEXT NOT NULL,
        found_at TEXT NOT NULL,
        PRIMARY KEY (scim_id, kind)
      ) STRICT;
    `,
  },
  {
    version: 13,
    name: 'leader_status: what the reconciler leader publishes for every replica',
    sql: `
      -- One row per leadership role: the leader's last status (JSON) and when it was published.
      CREATE TABLE leader_status (
        role TEXT NOT NULL PRIMARY KEY,
        replica TEXT NOT NULL,
        published_at TEXT NOT NULL,
        status TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 14,
    name: 'audit time index covering the activity tally; directory counters kept by triggers',
    sql: `
      -- The activity tally and the retention pass walk the trail in (at, id) order and read only
      -- these columns: with them in the index, neither looks up a table row. (The directory
      -- counters are row_counts, kept since version 1.)
      CREATE INDEX audit_at_cover_idx ON audit (at, id, status, duration_ms, actor);
      DROP INDEX audit_at_idx;
    `,
  },
];

export const SQLITE_SCHEMA_VERSION = Math.max(...SQLITE_MIGRATIONS.map((m) => m.version));

/**
 * The version of a store at user_version 1 to 4, read from the tables it holds. Stores written
 * before SQLite shared PostgreSQL's numbering count the same changes as 1 (users to store_meta),
 * 2 (intents) and 3 (audit); the tables say which changes a store has under either numbering.
 */
function versionFromTables(db: Database.Database): number {
  const has = (table: string) =>
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
  if (has('audit')) return 4;
  if (has('intents')) return 3;
  return has('store_meta') ? 2 : 1;
}

/**
 * Applies the migrations newer than user_version, all in one transaction with the version bump (a
 * failing one leaves the store as it was). Returns the versions applied; a database newer than this
 * build is left alone (the caller warns).
 */
export function migrateSqlite(db: Database.Database): number[] {
  return db
    .transaction(() => {
      const recorded = db.pragma('user_version', { simple: true }) as number;
      const current = recorded >= 1 && recorded <= 4 ? versionFromTables(db) : recorded;
      const pending = SQLITE_MIGRATIONS.filter((m) => m.version > current);
      for (const m of pending) db.exec(m.sql);
      const version = pending.at(-1)?.version ?? current;
      if (version !== recorded) db.pragma(`user_version = ${version}`);
      return pending.map((m) => m.version);
    })
    .immediate();
}
