// PostgreSQL's directory counts come from counters its triggers keep (migration 14), not count(*).
// They must equal count(*) after the migration (initialised from the rows already there), after a
// random mix of writes from two replicas at once (inserts, deletes, deactivations, memberships,
// units of work), through compactions, and after a TRUNCATE.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlDriver } from '../../src/store/driver.js';
import { MIGRATIONS, migrate } from '../../src/store/migrations.js';
import { openPostgresDriver } from '../../src/store/postgres-driver.js';
import { SqlStore } from '../../src/store/sql-store.js';
import { freshPostgresUrl } from '../helpers/postgres.js';
import { newGroup, newUser } from './contract.js';

const pgSchema = await freshPostgresUrl('row_counts');
if ('skip' in pgSchema) console.warn(`[test/store] skipping the PostgreSQL row counters: ${pgSchema.skip}`);
afterAll(async () => {
  if ('url' in pgSchema) await pgSchema.drop();
});

/** What directoryCounts must say: count(*) of each table. */
async function truth(db: SqlDriver) {
  const [row] = await db.query<{ users: number; deactivated: number; groups: number; memberships: number }>(
    `SELECT (SELECT count(*)::int FROM users) AS users,
            (SELECT count(*)::int FROM users WHERE NOT active) AS deactivated,
            (SELECT count(*)::int FROM groups) AS groups,
            (SELECT count(*)::int FROM memberships) AS memberships`,
  );
  return row;
}

/** A deterministic pseudo-random sequence (the mix is the same on every run). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe.skipIf('skip' in pgSchema)('PostgreSQL directory counters', () => {
  let driver: SqlDriver;
  let other: SqlDriver;
  let a: SqlStore;
  let b: SqlStore;

  beforeAll(async () => {
    if (!('url' in pgSchema)) return;
    driver = openPostgresDriver({ connectionString: pgSchema.url });
    other = openPostgresDriver({ connectionString: pgSchema.url });
    // The schema before migration 14, holding a directory already.
    await driver.transaction(async (tx) => {
      await tx.query(`CREATE TABLE schema_migrations (
        version integer NOT NULL PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      for (const m of MIGRATIONS.filter((m) => m.version < 14)) {
        for (const statement of m.statements) await tx.query(statement);
        await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      }
    });
    a = new SqlStore(driver);
    b = new SqlStore(other);
  });
  afterAll(async () => {
    await Promise.all([driver?.close(), other?.close()]);
  });

  it('are initialised from the rows already there when the migration runs', async () => {
    // Written with plain SQL: the triggers do not exist yet.
    await driver.query(`INSERT INTO users (scim_id, upstream_user_id, user_name, user_name_lower, active, state)
      SELECT 'pre-u' || i, 'pre-up' || i, 'pre' || i, 'pre' || i, i % 4 <> 0, 'ready' FROM generate_series(1, 40) i`);
    await driver.query(`INSERT INTO groups (scim_id, group_name, display_name, display_name_lower)
      SELECT 'pre-g' || i, 'pre-g' || i, 'Pre ' || i, 'pre ' || i FROM generate_series(1, 5) i`);
    await driver.query(`INSERT INTO memberships (group_scim_id, user_scim_id)
      SELECT 'pre-g' || (i % 5 + 1), 'pre-u' || i FROM generate_series(1, 40) i`);
    expect(await migrate(driver)).toEqual([14]);
    await a.init();
    await b.init();
    expect(await a.directoryCounts()).toEqual({ users: 40, deactivated: 10, groups: 5, memberships: 40 });
  });

  it('equal count(*) after a random mix of writes from two replicas at once', async () => {
    const random = prng(14);
    const users: string[] = [];
    const groups: string[] = [];
    const members = new Set<string>();
    const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)];
    const op = async (store: SqlStore): Promise<void> => {
      const r = random();
      if (r < 0.3 || users.length < 5) {
        const u = newUser({ active: random() < 0.8 });
        users.push(u.scimId);
        await store.insertUser(u);
      } else if (r < 0.4) {
        const g = newGroup();
        groups.push(g.scimId);
        await store.insertGroup(g);
      } else if (r < 0.55) {
        const scimId = pick(users);
        await store.updateUser(scimId, { active: random() < 0.5 });
      } else if (r < 0.75 && groups.length > 0) {
        const g = pick(groups);
        const u = pick(users);
        members.add(`${g}/${u}`);
        await store.addMembership(g, u);
      } else if (r < 0.82 && members.size > 0) {
        const [g, u] = pick([...members]).split('/');
        members.delete(`${g}/${u}`);
        await store.removeMembership(g, u);
      } else if (r < 0.9) {
        // One unit of work: a user created and put in a group, another removed (with its memberships).
        const u = newUser();
        const gone = users.splice(Math.floor(random() * users.length), 1)[0];
        users.push(u.scimId);
        await store.commit([
          { op: 'insertUser', record: u },
          ...(groups.length > 0
            ? [{ op: 'addMembership' as const, groupScimId: pick(groups), userScimId: u.scimId }]
            : []),
          { op: 'deleteUser', scimId: gone },
        ]);
      } else if (r < 0.95 && groups.length > 2) {
        const gone = groups.splice(Math.floor(random() * groups.length), 1)[0];
        await store.deleteGroup(gone);
      } else {
        const gone = users.splice(Math.floor(random() * users.length), 1)[0];
        await store.deleteUser(gone);
      }
    };
    // 40 rounds of 16 concurrent writes, alternating replicas (each its own connection pool).
    for (let round = 0; round < 40; round++) {
      await Promise.all(Array.from({ length: 16 }, (_, i) => op(i % 2 === 0 ? a : b)));
    }
    const expected = await truth(driver);
    expect(expected.users).toBeGreaterThan(100);
    expect(expected.memberships).toBeGreaterThan(40);
    expect(await a.directoryCounts()).toEqual(expected);
    expect(await b.directoryCounts()).toEqual(expected);
    // Compactions ran along the way: far fewer rows than the ~700 writing statements appended.
    const [{ n }] = await driver.query<{ n: number }>('SELECT count(*)::int AS n FROM row_counts');
    expect(n).toBeLessThan(300);
  });

  it('hold through compactions racing concurrent writers', async () => {
    const before = await truth(driver);
    const creates = Array.from({ length: 60 }, () => newUser());
    await Promise.all([
      ...creates.map((u, i) => (i % 2 === 0 ? a : b).insertUser(u)),
      ...Array.from({ length: 10 }, () =>
        driver.transaction(async (tx) => {
          await tx.query(
            "SELECT pg_advisory_xact_lock(hashtext('volc-scim-bridge/row_counts/' || coalesce(current_schema(), '')))",
          );
          await tx.query('SELECT row_counts_compact()');
        }),
      ),
    ]);
    const expected = await truth(driver);
    expect(expected.users).toBe(before.users + 60);
    expect(await a.directoryCounts()).toEqual(expected);
    await driver.transaction(async (tx) => {
      await tx.query('SELECT row_counts_compact()');
    });
    const rows = await driver.query<{ name: string }>('SELECT name FROM row_counts');
    expect(rows.map((r) => r.name).sort()).toEqual(['groups', 'memberships', 'users', 'users_inactive']);
    expect(await a.directoryCounts()).toEqual(expected);
  });

  it('are cleared by TRUNCATE', async () => {
    await driver.query('TRUNCATE users, memberships');
    const expected = await truth(driver);
    expect(expected).toMatchObject({ users: 0, deactivated: 0, memberships: 0 });
    expect(await a.directoryCounts()).toEqual(expected);
    await a.insertUser(newUser({ active: false }));
    expect(await a.directoryCounts()).toEqual({ ...expected, users: 1, deactivated: 1 });
  });
});
