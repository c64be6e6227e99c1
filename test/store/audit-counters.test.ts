// The per-actor counters behind the console's overview (audit_actors, migration 11) are kept by
// triggers on the audit table: they must equal a GROUP BY over the trail however rows arrive
// (one by one from concurrent connections, generated in bulk, present before the migration) and
// leave (retention), on both stores; and the overview's query must not read the trail.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { AUDIT_ACTORS } from '../../src/store/audit-sql.js';
import type { AuditActor, AuditEntry } from '../../src/store/audit-types.js';
import { openStore } from '../../src/store/index.js';
import { MIGRATIONS, migrate } from '../../src/store/migrations.js';
import { openPostgresDriver } from '../../src/store/postgres-driver.js';
import { SqlStore } from '../../src/store/sql-store.js';
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite-migrations.js';
import { prepareDatabase, SqliteStore } from '../../src/store/sqlite-store.js';
import { copyEmbeddedToPostgres } from '../../src/store/tools.js';
import type { BridgeStore } from '../../src/store/types.js';
import { fillAuditPostgres, fillAuditSqlite } from '../helpers/audit-rows.js';
import { freshPostgresUrl } from '../helpers/postgres.js';

const FILLED = 20_000;

function entry(actor: string, status: number, at = new Date().toISOString()): AuditEntry {
  return {
    at,
    actor,
    clientIp: null,
    requestId: null,
    method: 'PATCH',
    resourceType: 'User',
    resourceId: 'u-1',
    resourceName: 'user1@example.com',
    status,
    scimType: null,
    detail: null,
    durationMs: 3,
    changes: {},
    upstream: [],
  };
}

type Totals = Array<{ actor: string; writes: number; errors: number; lastAt: string }>;

const normal = (actors: AuditActor[] | Totals) =>
  actors
    .map(({ actor, writes, errors, lastAt }) => ({ actor, writes, errors, lastAt }))
    .sort((a, b) => (a.actor < b.actor ? -1 : 1));

/** Appends from many concurrent calls (PostgreSQL: several pool connections, so several stripes), prunes, compares. */
async function exercise(store: BridgeStore, truth: () => Promise<Totals>): Promise<void> {
  expect(normal(await store.auditActors(50))).toEqual(normal(await truth()));
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 200; i++)
    writes.push(store.appendAudit(entry(i % 3 === 0 ? 'okta' : 'new-idp', i % 7 === 0 ? 500 : 201)));
  await Promise.all(writes);
  expect(normal(await store.auditActors(50))).toEqual(normal(await truth()));
  // Retention: the oldest half of the generated rows, in batches.
  const before = new Date(Date.now() - (FILLED / 2) * 1000).toISOString();
  while ((await store.pruneAudit(before, 3_000)) > 0);
  const after = await truth();
  expect(after.find((a) => a.actor === 'okta')!.writes).toBeLessThan(FILLED / 5 + 67);
  expect(normal(await store.auditActors(50))).toEqual(normal(after));
  // An actor whose every record is pruned disappears.
  await store.appendAudit(entry('gone-soon', 409, '2000-01-01T00:00:00.000Z'));
  expect((await store.auditActors(50)).map((a) => a.actor)).toContain('gone-soon');
  while ((await store.pruneAudit('2001-01-01T00:00:00.000Z', 100)) > 0);
  expect((await store.auditActors(50)).map((a) => a.actor)).not.toContain('gone-soon');
  expect(normal(await store.auditActors(50))).toEqual(normal(await truth()));
}

describe('per-actor audit counters (embedded store)', () => {
  it('are filled from the rows present at migration, then follow inserts and retention', async () => {
    const db = new Database(':memory:');
    // The schema before migration 11, with a trail in it.
    for (const m of SQLITE_MIGRATIONS.filter((x) => x.version < 11)) {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }
    fillAuditSqlite(db, FILLED);
    prepareDatabase(db);
    const store = new SqliteStore(db);
    const truth = async () =>
      (
        db
          .prepare(
            'SELECT actor, count(*) AS writes, sum(status >= 400) AS errors, max(at) AS lastAt FROM audit GROUP BY actor',
          )
          .all() as Totals
      ).map((r) => ({ ...r, lastAt: new Date(r.lastAt).toISOString() }));
    await exercise(store, truth);
    const plan = (
      db.prepare(`EXPLAIN QUERY PLAN ${AUDIT_ACTORS}`).all({ 1: 50 }) as Array<{ detail: string }>
    )
      .map((r) => r.detail)
      .join(' | ');
    expect(plan).toMatch(/audit_actors/);
    expect(plan).not.toMatch(/\baudit\b(?!_actors)/);
    await store.close();
  });
});

const pg = await freshPostgresUrl('counters');
describe.skipIf('skip' in pg)('per-actor audit counters (PostgreSQL)', () => {
  if ('skip' in pg) {
    console.warn(`[skip] ${pg.skip}`);
    return;
  }
  const driver = openPostgresDriver({ connectionString: pg.url });
  afterAll(async () => {
    await driver.close();
    await pg.drop();
  });

  it('are filled from the rows present at migration, then follow inserts and retention', async () => {
    // The schema before migration 11, with a trail in it.
    await driver.query(
      'CREATE TABLE schema_migrations (version integer NOT NULL PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    for (const m of MIGRATIONS.filter((x) => x.version < 11)) {
      for (const statement of m.statements) await driver.query(statement);
      await driver.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        m.version,
        m.name,
      ]);
    }
    await fillAuditPostgres(driver, FILLED);
    await migrate(driver);
    const store = new SqlStore(driver);
    const truth = async () =>
      (
        await driver.query<{ actor: string; writes: number; errors: number; last_at: Date }>(
          `SELECT actor, count(*)::int AS writes, count(*) FILTER (WHERE status >= 400)::int AS errors,
             max(at) AS last_at FROM audit GROUP BY actor`,
        )
      ).map((r) => ({ actor: r.actor, writes: r.writes, errors: r.errors, lastAt: r.last_at.toISOString() }));
    await exercise(store, truth);
    // Concurrent appends used more than one stripe (one per writing connection).
    const [{ stripes }] = await driver.query<{ stripes: number }>(
      `SELECT count(*)::int AS stripes FROM audit_actors WHERE actor = 'new-idp'`,
    );
    expect(stripes).toBeGreaterThan(1);
    const plan = (await driver.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${AUDIT_ACTORS}`, [50]))
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    expect(plan).toMatch(/on audit_actors/);
    expect(plan).not.toMatch(/on audit\b(?!_actors)/);
  });
});

describe.skipIf('skip' in pg)('per-actor audit counters after `store copy` to PostgreSQL', () => {
  it('equal the copied trail (the counters are rebuilt by the target, not copied)', async () => {
    const target = await freshPostgresUrl('counters');
    if ('skip' in target) return;
    const dataDir = mkdtempSync(join(tmpdir(), 'counters-copy-'));
    try {
      const embedded = (await openStore({ dataDir })) as SqliteStore;
      fillAuditSqlite(embedded.db, 2_000);
      await embedded.appendAudit(entry('okta', 500));
      const expected = normal(await embedded.auditActors(50));
      await embedded.close();
      await copyEmbeddedToPostgres(dataDir, target.url);
      const copied = await openStore({ databaseUrl: target.url });
      try {
        expect(normal(await copied.auditActors(50))).toEqual(expected);
      } finally {
        await copied.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      await target.drop();
    }
  });
});
