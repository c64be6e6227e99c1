import type { Logger } from 'pino';
import type { SqlDriver } from './driver.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  /** One statement per entry: the driver sends each as one parameterised query. */
  readonly statements: readonly string[];
}

// Append only; never edit a migration that has shipped. Constraint names are spelled out because
// sql-store.ts maps unique violations to StoreConflictError fields by constraint name.
// user_name_lower/display_name_lower hold the JS-folded name (see fold-case.ts).
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
  // Version 3 belongs to the reconciler's intents (issue 11); the set of applied versions is
  // compared, so a gap (or a later insertion below this one) is applied as usual.
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
