// SqlStore on PostgreSQL (DATABASE_URL): the shared contract, plus what only SQL has (migrations,
// one statement per batch lookup, several replicas on one database).
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/store/audit-types.js';
import type { SqlDriver } from '../../src/store/driver.js';
import { StoreLockTimeoutError } from '../../src/store/errors.js';
import { openStore } from '../../src/store/index.js';
import { MIGRATIONS, migrate } from '../../src/store/migrations.js';
import { openPostgresDriver } from '../../src/store/postgres-driver.js';
import { SqlStore } from '../../src/store/sql-store.js';
import { freshPostgresUrl } from '../helpers/postgres.js';
import { type ContractTarget, newGroup, newUser, storeContract } from './contract.js';

interface SqlTarget extends ContractTarget {
  driver: SqlDriver;
  store: SqlStore;
}

/** Records every statement, to prove batch lookups are one query. */
function countingDriver(inner: SqlDriver): { driver: SqlDriver; statements: string[] } {
  const statements: string[] = [];
  return {
    statements,
    driver: {
      query: (sql, params) => {
        statements.push(sql);
        return inner.query(sql, params);
      },
      transaction: (fn) => inner.transaction(fn),
      close: () => inner.close(),
    },
  };
}

describe('migrations', () => {
  it('have unique, increasing versions', () => {
    const versions = MIGRATIONS.map((m) => m.version);
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
    expect(new Set(versions).size).toBe(versions.length);
  });
});

const pgSchema = await freshPostgresUrl('store_test');
if ('skip' in pgSchema) console.warn(`[test/store] skipping the PostgreSQL suite: ${pgSchema.skip}`);
afterAll(async () => {
  if ('url' in pgSchema) await pgSchema.drop();
});

storeContract<SqlTarget>(
  'SqlStore on PostgreSQL',
  async () => {
    if (!('url' in pgSchema)) throw new Error('unreachable: suite is skipped');
    const url = pgSchema.url;
    const driver = openPostgresDriver({ connectionString: url });
    const store = new SqlStore(driver);
    await store.init();
    return {
      driver,
      store,
      reset: async () => {
        await driver.query('TRUNCATE users, groups, memberships, intents, audit, audit_subjects');
      },
      peer: async () => {
        const peerDriver = openPostgresDriver({ connectionString: url });
        return { store: new SqlStore(peerDriver), close: () => peerDriver.close() };
      },
      close: () => driver.close(),
    };
  },
  {
    skip: 'skip' in pgSchema ? pgSchema.skip : undefined,
    extra: (target) => {
      it('resource locks hold across replicas: a waiter past its deadline gets StoreLockTimeoutError, then the lock once freed', async () => {
        const t = target();
        const peer = await t.peer();
        try {
          const other = peer.store as SqlStore;
          const release = await t.store.lockResource!('user:lock-test');
          await expect(
            other.lockResource!('user:lock-test', { deadlineAt: Date.now() + 200 }),
          ).rejects.toBeInstanceOf(StoreLockTimeoutError);
          await release();
          const again = await other.lockResource!('user:lock-test', { deadlineAt: Date.now() + 10_000 });
          let held: { n: number }[];
          try {
            held = await t.driver.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
                 AND ((classid::bigint << 32) | objid::bigint) =
                   hashtextextended('volc-scim-bridge/resource/' || current_schema() || '/user:lock-test', 0)`,
            );
          } finally {
            await again();
          }
          expect(held[0].n).toBe(1);
          // Both sessions went back to their pools in working order: each takes the lock at once.
          for (const store of [t.store, other]) await (await store.lockResource!('user:lock-test'))();
        } finally {
          await peer.close();
        }
      });

      it('uses its own schema, not public', async () => {
        const rows = await target().driver.query<{ schema: string }>('SELECT current_schema() AS schema');
        expect(rows[0].schema).toMatch(/^store_test_[0-9a-f]{12}$/);
      });

      it('init is idempotent and records every migration once, with replicas starting together', async () => {
        const t = target();
        await t.store.init();
        await t.store.init();
        expect(await migrate(t.driver)).toEqual([]);
        const peer = await t.peer();
        try {
          await Promise.all([t.store.init(), peer.store.init(), t.store.init()]);
        } finally {
          await peer.close();
        }
        const rows = await t.driver.query<{ version: number }>(
          'SELECT version FROM schema_migrations ORDER BY 1',
        );
        expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
      });

      it('fetches users by upstream ids in one query', async () => {
        const t = target();
        const a = await t.store.insertUser(newUser());
        const b = await t.store.insertUser(newUser());
        const users = [a, b];
        for (let i = 0; i < 48; i++) users.push(await t.store.insertUser(newUser()));
        const counted = countingDriver(t.driver);
        const store = new SqlStore(counted.driver);
        const ids = users.map((u) => u.upstreamUserId!);
        const found = await store.getUsersByUpstreamIds([...ids, 'missing', ...ids]);
        expect(counted.statements).toHaveLength(1);
        expect(found.size).toBe(50);
        expect((await store.getUsersByUpstreamIds([])).size).toBe(0);
        expect(counted.statements).toHaveLength(1);
      });

      it("removes a replaced start record's subjects with it, and nobody else's", async () => {
        const t = target();
        const entry = (requestId: string, status: number, subjects: string[]): AuditEntry => ({
          at: new Date().toISOString(),
          actor: 'okta',
          clientIp: null,
          requestId,
          method: 'POST',
          resourceType: 'User',
          resourceId: 'u-1',
          resourceName: null,
          status,
          scimType: null,
          detail: null,
          durationMs: 1,
          changes: {},
          upstream: [],
          subjects,
        });
        await t.store.commit([{ op: 'appendAudit', entry: entry('req-a', 102, ['a1', 'a2']) }]);
        await t.store.commit([{ op: 'appendAudit', entry: entry('req-b', 102, ['b1']) }]);
        await t.store.commit([
          { op: 'appendAudit', entry: entry('req-a', 201, ['a3']), replacesStart: true },
        ]);
        const subjects = await t.driver.query<{ subject_lower: string }>(
          'SELECT subject_lower FROM audit_subjects ORDER BY subject_lower',
        );
        expect(subjects.map((s) => s.subject_lower)).toEqual(['a3', 'b1']);
      });

      it('fetches groups by ids and groups of users in one query each', async () => {
        const t = target();
        const g = await t.store.insertGroup(newGroup());
        const h = await t.store.insertGroup(newGroup());
        await t.store.addMembership(g.scimId, 'u-1');
        await t.store.addMembership(h.scimId, 'u-2');
        const counted = countingDriver(t.driver);
        const store = new SqlStore(counted.driver);
        expect((await store.getGroups([g.scimId, 'missing', h.scimId])).size).toBe(2);
        expect(counted.statements).toHaveLength(1);
        expect((await store.groupsOfUsers(['u-1', 'u-2', 'u-3'])).size).toBe(2);
        expect(counted.statements).toHaveLength(2);
        expect((await store.getGroups([])).size).toBe(0);
        expect((await store.groupsOfUsers([])).size).toBe(0);
        expect(counted.statements).toHaveLength(2);
      });

      it('migrates a fresh schema exactly once when several replicas start together', async () => {
        const fresh = await freshPostgresUrl('store_test');
        if (!('url' in fresh)) throw new Error(fresh.skip);
        const drivers = Array.from({ length: 4 }, () => openPostgresDriver({ connectionString: fresh.url }));
        try {
          const applied = await Promise.all(drivers.map((d) => migrate(d)));
          expect(applied.flat()).toEqual(MIGRATIONS.map((m) => m.version));
          expect(applied.filter((a) => a.length > 0)).toHaveLength(1);
          // And openStore on the same schema finds nothing left to do.
          const store = await openStore({ databaseUrl: fresh.url });
          try {
            const u = await store.insertUser(newUser());
            expect(await store.getUser(u.scimId)).toEqual(u);
          } finally {
            await store.close();
          }
          const rows = await drivers[0].query<{ n: number }>(
            'SELECT count(*)::int AS n FROM schema_migrations',
          );
          expect(rows[0].n).toBe(MIGRATIONS.length);
        } finally {
          await Promise.all(drivers.map((d) => d.close()));
          await fresh.drop();
        }
      });

      it('initialises concurrently through the public store API too', async () => {
        const fresh = await freshPostgresUrl('store_test');
        if (!('url' in fresh)) throw new Error(fresh.skip);
        try {
          const stores = await Promise.all(
            Array.from({ length: 3 }, () => openStore({ databaseUrl: fresh.url })),
          );
          await Promise.all(stores.map((s) => s.ping()));
          await Promise.all(stores.map((s) => s.close()));
        } finally {
          await fresh.drop();
        }
      });
    },
  },
);
