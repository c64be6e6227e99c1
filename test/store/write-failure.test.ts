// A write the store could not commit is never acknowledged: on a full database (PRAGMA
// max_page_count), on a full filesystem (a 3 MB tmpfs, where the machine lets the test mount one),
// and on PostgreSQL with the connection killed before COMMIT (in the one-round-trip unit, where a
// held lock stops a later statement and its backend is terminated there, and in the transaction()
// fallback), every write method rejects with StoreUnavailableError, nothing of it is stored (also
// after reopening), the store reports that it cannot write, and it recovers by itself once writes
// commit again.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDb from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { Readiness } from '../../src/ops/readiness.js';
import type { Queryable, SqlDriver } from '../../src/store/driver.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { openStore } from '../../src/store/index.js';
import { openPostgresDriver } from '../../src/store/postgres-driver.js';
import { SqlStore } from '../../src/store/sql-store.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import type { BridgeStore, StoreWrite, UserRecord } from '../../src/store/types.js';
import type { CloudIdentityApi } from '../../src/volcengine/types.js';
import { CommitAnswerProxy } from '../helpers/commit-answer-proxy.js';
import { LockHolder } from '../helpers/pg-lock-kill.js';
import { freshPostgresUrl, TEST_DATABASE_URL } from '../helpers/postgres.js';
import { BlackholeProxy } from '../helpers/tcp-proxy.js';
import { auditEntry, newGroup, newUser, nextId } from './contract.js';

const root = await mkdtemp(join(tmpdir(), 'store-write-failure-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
let dirs = 0;

const big = (n: number) => 'x'.repeat(n);

/** The records every case starts from. */
interface Seed {
  userId: string;
  groupId: string;
  intentId: string;
}

async function seed(store: BridgeStore): Promise<Seed> {
  const u = await store.insertUser(newUser());
  const g = await store.insertGroup(newGroup());
  await store.addMembership(g.scimId, u.scimId);
  // A payload that nearly fills a page: recording an attempt on it needs a page more.
  const i = await store.putIntent({
    id: `i-${nextId()}`,
    resource: `user:${u.scimId}`,
    kind: 'user.deactivate',
    payload: { pad: big(3_700) },
  });
  await store.appendAudit({ ...auditEntry({ resourceId: u.scimId }), at: '2000-01-01T00:00:00.000Z' });
  return { userId: u.scimId, groupId: g.scimId, intentId: i.id };
}

/**
 * Every write method, with values large enough to need new pages where that matters. `grows`: the
 * write needs space the database does not have at its page limit (deletes free space instead, so
 * a database at max_page_count can still commit them: only a full filesystem refuses those).
 */
const WRITES: Array<{
  name: string;
  grows: boolean;
  run: (s: BridgeStore & Meta, seed: Seed) => Promise<unknown>;
}> = [
  {
    name: 'commit',
    grows: true,
    run: (s, x) =>
      s.commit([
        { op: 'updateUser', scimId: x.userId, changes: { attributes: { pad: big(20_000) } } },
        { op: 'appendAudit', entry: auditEntry({ resourceId: x.userId, detail: big(1_000) }) },
      ]),
  },
  {
    name: 'insertUser',
    grows: true,
    run: (s) => s.insertUser(newUser({ attributes: { pad: big(20_000) } })),
  },
  {
    name: 'updateUser',
    grows: true,
    run: (s, x) => s.updateUser(x.userId, { active: false, attributes: { pad: big(20_000) } }),
  },
  { name: 'deleteUser', grows: false, run: (s, x) => s.deleteUser(x.userId) },
  {
    name: 'insertGroup',
    grows: true,
    run: (s) => s.insertGroup(newGroup({ attributes: { pad: big(20_000) } })),
  },
  {
    name: 'updateGroup',
    grows: true,
    run: (s, x) => s.updateGroup(x.groupId, { attributes: { pad: big(20_000) } }),
  },
  { name: 'deleteGroup', grows: false, run: (s, x) => s.deleteGroup(x.groupId) },
  { name: 'addMembership', grows: true, run: (s, x) => s.addMembership(`g-${big(9_000)}`, x.userId) },
  { name: 'removeMembership', grows: false, run: (s, x) => s.removeMembership(x.groupId, x.userId) },
  {
    name: 'putIntent',
    grows: true,
    run: (s) => s.putIntent({ id: 'i-new', resource: 'user:u', kind: 'k', payload: { pad: big(20_000) } }),
  },
  { name: 'clearIntent', grows: false, run: (s, x) => s.clearIntent(x.intentId) },
  {
    name: 'recordIntentAttempt',
    grows: true,
    run: (s, x) => s.recordIntentAttempt(x.intentId, big(2_000), new Date(Date.now() + 60_000)),
  },
  {
    name: 'appendAudit',
    grows: true,
    run: (s) =>
      s.appendAudit(
        auditEntry({
          changes: { attributes: Array.from({ length: 40 }, (_, i) => `${i}${big(500)}`) },
          subjects: ['a'],
        }),
      ),
  },
  { name: 'pruneAudit', grows: false, run: (s) => s.pruneAudit('2001-01-01T00:00:00.000Z', 10) },
  { name: 'setMeta', grows: true, run: (s) => s.setMeta('k', big(20_000)) },
  { name: 'insertMetaIfAbsent', grows: true, run: (s) => s.insertMetaIfAbsent('k2', big(20_000)) },
  { name: 'heartbeat', grows: false, run: (s) => s.heartbeat!() },
];

interface Meta {
  setMeta(key: string, value: string): Promise<void>;
  insertMetaIfAbsent(key: string, value: string): Promise<void>;
}

const TABLES = ['users', 'groups', 'memberships', 'intents', 'audit', 'audit_subjects', 'store_meta'];
/** Rows that change by themselves: the embedded store's owner (written at every open), the heartbeat. */
const WHERE: Record<string, string> = { store_meta: "WHERE key NOT IN ('owner', 'heartbeat')" };

/** Every row of every table, read through a connection of its own. */
function dumpSqlite(file: string): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  const db = new SqliteDb(file, { readonly: true });
  try {
    for (const t of TABLES) out[t] = db.prepare(`SELECT * FROM ${t} ${WHERE[t] ?? ''} ORDER BY 1, 2`).all();
  } finally {
    db.close();
  }
  return out;
}
async function expectUnavailable(promise: Promise<unknown>, name: string): Promise<StoreUnavailableError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `${name} must reject`).toBeInstanceOf(StoreUnavailableError);
  return err as StoreUnavailableError;
}

describe('SqliteStore on a database at its page limit (PRAGMA max_page_count)', () => {
  for (const w of WRITES.filter((x) => x.grows)) {
    it(`${w.name} rejects with StoreUnavailableError, stores nothing, and recovers once there is room`, async () => {
      const dataDir = join(root, `p${++dirs}`);
      let store = (await openStore({ dataDir })) as SqliteStore;
      const file = join(dataDir, 'bridge.sqlite');
      try {
        const s = await seed(store);
        // No free pages left inside the file (a migration that drops an index leaves some), so a
        // write that grows needs a page past the limit.
        store.db.exec('VACUUM');
        const before = dumpSqlite(file);
        const pages = store.db.pragma('page_count', { simple: true }) as number;
        store.db.pragma(`max_page_count = ${pages}`);
        const err = await expectUnavailable(w.run(store, s), w.name);
        expect(err.reason).toBe('SQLite SQLITE_FULL');
        expect(store.writeFailureReason()).toBe('SQLite SQLITE_FULL');
        expect(dumpSqlite(file)).toEqual(before);
        await store.close();
        store = (await openStore({ dataDir })) as SqliteStore;
        expect(dumpSqlite(file)).toEqual(before);
        // Room again (a fresh connection has no page limit): the same write commits.
        await w.run(store, s);
        expect(store.writeFailureReason()).toBeNull();
      } finally {
        await store.close();
      }
    });
  }
});

/** Mounts a 3 MB tmpfs; returns why it cannot when the machine refuses. */
function mountSmallFs(dir: string): string | null {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    return (e.stderr?.toString().trim() || e.message).split('\n')[0];
  }
}

const fsDir = join(root, 'small-fs');
const mountRefused = mountSmallFs(fsDir);
if (mountRefused)
  console.warn(`[test/store] skipping the full-filesystem case: mount refused (${mountRefused})`);
afterAll(() => {
  if (!mountRefused) execFileSync('umount', [fsDir]);
});

/** Fills the filesystem of `file` to the last byte. */
function fillFs(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (let size = chunk.length; size >= 1; ) {
      try {
        writeSync(fd, chunk, 0, size);
      } catch {
        size = Math.floor(size / 2);
      }
    }
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(mountRefused !== null)('SqliteStore on a full filesystem (3 MB tmpfs)', () => {
  it('makes readiness say not ready while the store cannot write, and ready again by itself once it can', async () => {
    const dataDir = join(fsDir, 'ready');
    const store = (await openStore({ dataDir })) as SqliteStore;
    const filler = join(fsDir, 'filler-ready');
    // CloudIdentity is not what this test is about: its check always passes.
    const api = { listUsers: async () => ({ Users: [], Total: 0 }) } as unknown as CloudIdentityApi;
    // A long cache: a failed write and a recovered one must both be seen at once regardless.
    const readiness = new Readiness({ store, api, cacheMs: 600_000 });
    try {
      const s = await seed(store);
      expect((await readiness.check()).status).toBe('ready');
      fillFs(filler);
      // Reads still work: the ping alone would call this store healthy.
      await store.ping();
      await expectUnavailable(store.updateUser(s.userId, { active: false }), 'updateUser');
      const down = await readiness.check();
      expect(down.status).toBe('not_ready');
      expect(down.reason).toMatch(/^store cannot write \(SQLite SQLITE_(FULL|IOERR)/);
      // Still down: the check's own heartbeat write fails too.
      expect((await readiness.check()).status).toBe('not_ready');
      rmSync(filler);
      // Nothing else writes: the check's heartbeat commits, and the bridge is ready again.
      const again = new Readiness({ store, api, cacheMs: 0 });
      expect((await again.check()).status).toBe('ready');
      expect(store.writeFailureReason()).toBeNull();
      expect((await readiness.check()).status).toBe('ready');
    } finally {
      rmSync(filler, { force: true });
      await store.close();
    }
  });

  it('rejects every write method with StoreUnavailableError, stores nothing, and recovers when space is freed', async () => {
    const dataDir = join(fsDir, 'data');
    let store = (await openStore({ dataDir })) as SqliteStore;
    const file = join(dataDir, 'bridge.sqlite');
    const filler = join(fsDir, 'filler');
    try {
      const s = await seed(store);
      const before = dumpSqlite(file);
      fillFs(filler);
      for (const w of WRITES) {
        const err = await expectUnavailable(w.run(store, s), w.name);
        expect(err.reason, w.name).toMatch(/^SQLite SQLITE_(FULL|IOERR)/);
        expect(store.writeFailureReason(), w.name).not.toBeNull();
        expect(dumpSqlite(file), w.name).toEqual(before);
      }
      await expectUnavailable(store.heartbeat(), 'heartbeat');
      rmSync(filler);
      // Space again: the heartbeat commits, which clears the failure, and writes work.
      await store.heartbeat();
      expect(store.writeFailureReason()).toBeNull();
      await store.close();
      store = (await openStore({ dataDir })) as SqliteStore;
      expect(dumpSqlite(file)).toEqual(before);
      await store.updateUser(s.userId, { active: false });
    } finally {
      rmSync(filler, { force: true });
      await store.close();
    }
  });
});

const pgSchema = await freshPostgresUrl('write_failure');
if ('skip' in pgSchema) console.warn(`[test/store] skipping the PostgreSQL cases: ${pgSchema.skip}`);
afterAll(async () => {
  if ('url' in pgSchema) await pgSchema.drop();
});

async function dumpPg(driver: SqlDriver): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const t of TABLES) out[t] = await driver.query(`SELECT * FROM ${t} ${WHERE[t] ?? ''} ORDER BY 1, 2`);
  return out;
}

describe.skipIf('skip' in pgSchema)('SqlStore with its connection killed', () => {
  // A driver without unit(): commit() falls back to transaction(), which this seam can stop before
  // COMMIT. The one-round-trip path (unit()) is the next describe's.
  it('rejects a unit whose connection is killed before COMMIT, applying none of it, and recovers', async () => {
    const url = (pgSchema as { url: string }).url;
    const inner = openPostgresDriver({ connectionString: url });
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    admin.on('error', () => {});
    await admin.connect();
    let killBeforeCommit = false;
    // The driver seam: after the unit's statements ran, and before the driver sends COMMIT, the
    // transaction's backend is terminated from another connection.
    const driver: SqlDriver = {
      query: (sql, params) => inner.query(sql, params),
      close: () => inner.close(),
      transaction: (fn) =>
        inner.transaction(async (tx) => {
          const result = await fn(tx);
          if (killBeforeCommit) {
            const [{ pid }] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
            await admin.query('SELECT pg_terminate_backend($1, 5000)', [pid]);
          }
          return result;
        }),
    };
    const store = new SqlStore(driver);
    try {
      await store.init();
      const s = await seed(store);
      const before = await dumpPg(inner);
      killBeforeCommit = true;
      const units = [
        () =>
          store.commit([
            { op: 'updateUser', scimId: s.userId, changes: { active: false } },
            { op: 'clearIntent', id: s.intentId },
            { op: 'appendAudit', entry: auditEntry({ resourceId: s.userId, subjects: ['x'] }) },
          ]),
        () => store.deleteUser(s.userId),
        () => store.deleteGroup(s.groupId),
        () => store.pruneAudit('2001-01-01T00:00:00.000Z', 10),
        () => store.appendAudit(auditEntry({ subjects: ['u-1'] })),
      ];
      for (const unit of units) {
        await expectUnavailable(unit(), 'unit');
        expect(store.writeFailureReason()).not.toBeNull();
        expect(await dumpPg(inner)).toEqual(before);
      }
      killBeforeCommit = false;
      await store.heartbeat();
      expect(store.writeFailureReason()).toBeNull();
      await store.commit([{ op: 'updateUser', scimId: s.userId, changes: { active: false } }]);
    } finally {
      await admin.end();
      await store.close();
    }
  });

  it('rejects every single-statement write while the database cannot be reached, storing nothing', async () => {
    const url = new URL((pgSchema as { url: string }).url);
    const good = openPostgresDriver({ connectionString: url.toString() });
    const store = new SqlStore(good);
    await store.init();
    const s = await seed(store);
    const before = await dumpPg(good);
    // Nothing listens on port 1: every connection attempt is refused.
    const unreachable = new URL(url);
    unreachable.port = '1';
    const cutDriver = openPostgresDriver({
      connectionString: unreachable.toString(),
      connectionTimeoutMillis: 2000,
    });
    const cut = new SqlStore(cutDriver);
    try {
      for (const w of WRITES) {
        const err = await expectUnavailable(w.run(cut, s), w.name);
        expect(err.reason, w.name).toMatch(/^PostgreSQL: /);
        expect(cut.writeFailureReason(), w.name).not.toBeNull();
      }
      expect(await dumpPg(good)).toEqual(before);
    } finally {
      await cutDriver.close();
      await store.close();
    }
  });
});

/**
 * The writes that reach PostgreSQL through SqlDriver.unit (more than one statement; a single
 * statement is its own transaction, and pruneAudit / revokeAdminSession / the drift snapshot use
 * transaction()), each with a lock that stops one of its later statements (`blocked`) after the
 * earlier ones wrote (`wrote`: tables its transaction had written to when it was killed).
 */
const UNIT_WRITES: Array<{
  name: string;
  lock: (x: Seed & { startedRequest: string }) => [string, unknown[]];
  run: (s: BridgeStore, x: Seed & { startedRequest: string }) => Promise<unknown>;
  blocked: RegExp;
  wrote: string[];
}> = [
  {
    name: 'commit, killed in its checked update (after a delete ran)',
    lock: (x) => ['SELECT 1 FROM users WHERE scim_id = $1 FOR UPDATE', [x.userId]],
    run: (s, x) =>
      s.commit([
        { op: 'clearIntent', id: x.intentId },
        { op: 'updateUser', scimId: x.userId, changes: { active: false } },
        { op: 'appendAudit', entry: auditEntry({ resourceId: x.userId, subjects: ['x'] }) },
      ]),
    blocked: /UPDATE users/,
    wrote: ['intents'],
  },
  {
    name: 'commit, killed after its checked update ran',
    lock: (x) => ['SELECT 1 FROM intents WHERE id = $1 FOR UPDATE', [x.intentId]],
    run: (s, x) =>
      s.commit([
        { op: 'updateUser', scimId: x.userId, changes: { active: false } },
        { op: 'clearIntent', id: x.intentId },
        { op: 'appendAudit', entry: auditEntry({ resourceId: x.userId, subjects: ['x'] }) },
      ]),
    blocked: /DELETE FROM intents/,
    wrote: ['users'],
  },
  {
    name: 'deleteUser',
    lock: (x) => ['SELECT 1 FROM users WHERE scim_id = $1 FOR UPDATE', [x.userId]],
    run: (s, x) => s.deleteUser(x.userId),
    blocked: /DELETE FROM users/,
    wrote: ['memberships'],
  },
  {
    name: 'deleteGroup',
    lock: (x) => ['SELECT 1 FROM groups WHERE scim_id = $1 FOR UPDATE', [x.groupId]],
    run: (s, x) => s.deleteGroup(x.groupId),
    blocked: /DELETE FROM groups/,
    wrote: ['memberships'],
  },
  {
    name: 'appendAudit (with subjects)',
    lock: () => ['LOCK TABLE audit_subjects IN SHARE MODE', []],
    run: (s) => s.appendAudit(auditEntry({ subjects: ['u-1'] })),
    blocked: /INSERT INTO audit_subjects/,
    wrote: ['audit'],
  },
  {
    name: "appendAudit replacing its request's start record",
    lock: (x) => [
      'SELECT 1 FROM audit WHERE request_id = $1 AND status = 102 FOR UPDATE',
      [x.startedRequest],
    ],
    run: (s, x) =>
      s.commit([
        { op: 'appendAudit', entry: auditEntry({ requestId: x.startedRequest }), replacesStart: true },
      ]),
    blocked: /DELETE FROM audit WHERE/,
    wrote: ['audit_subjects'],
  },
];

/** The real driver, counting its unit() calls: the writes below must take that path. */
function countingUnits(inner: SqlDriver): SqlDriver & { units: number } {
  const counting = {
    units: 0,
    query: <T>(sql: string, params?: readonly unknown[]) => inner.query<T>(sql, params),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => inner.transaction(fn),
    unit: (statements: readonly { sql: string; params?: readonly unknown[] }[]) => {
      counting.units += 1;
      return inner.unit!(statements);
    },
    close: () => inner.close(),
  };
  return counting;
}

describe.skipIf('skip' in pgSchema)('SqlStore with a one-round-trip unit killed before COMMIT', () => {
  for (const w of UNIT_WRITES) {
    it(`${w.name}: rejects with StoreUnavailableError, stores nothing, and recovers`, async () => {
      const url = (pgSchema as { url: string }).url;
      // The production path: BEGIN, the statements and COMMIT pipelined in one batch (unit()).
      const driver = countingUnits(openPostgresDriver({ connectionString: url }));
      const store = new SqlStore(driver);
      const locks = await LockHolder.connect(url);
      try {
        await store.init();
        const startedRequest = `started-${nextId()}`;
        const s = { ...(await seed(store)), startedRequest };
        await store.appendAudit(auditEntry({ requestId: startedRequest, status: 102, subjects: ['s-1'] }));
        const before = await dumpPg(driver);
        // What triggers keep beside the tables (row counts, per-actor audit totals).
        const derived = async () => ({
          counts: await store.directoryCounts(),
          actors: await store.auditActors(100),
        });
        const derivedBefore = await derived();
        const [lockSql, lockParams] = w.lock(s);
        await locks.hold(lockSql, lockParams);
        const units = driver.units;
        const pending = w.run(store, s);
        // Awaited below, once its backend is killed.
        pending.catch(() => {});
        const victim = await locks.killNextWaiter(pending);
        await locks.release();
        expect(driver.units - units, 'one unit()').toBe(1);
        expect(victim.query).toMatch(w.blocked);
        // Killed after the unit's earlier statements ran, in the same transaction.
        expect(victim.wrote).toEqual(expect.arrayContaining(w.wrote));
        const err = await expectUnavailable(pending, w.name);
        expect(err.reason).toBe('PostgreSQL: 57P01');
        expect(store.writeFailureReason()).toBe('PostgreSQL: 57P01');
        expect(await dumpPg(driver)).toEqual(before);
        expect(await derived()).toEqual(derivedBefore);
        // The database is fine again: the same write commits, and the store can write again.
        await w.run(store, s);
        expect(store.writeFailureReason()).toBeNull();
        expect(await dumpPg(driver)).not.toEqual(before);
      } finally {
        await locks.end();
        await store.close();
      }
    });
  }
});

describe.skipIf('skip' in pgSchema)("SqlStore with the answer to a unit's COMMIT lost", () => {
  const url = () => (pgSchema as { url: string }).url;
  const deactivation = (s: Seed): StoreWrite[] => [
    { op: 'updateUser', scimId: s.userId, changes: { active: false } },
    { op: 'clearIntent', id: s.intentId },
    { op: 'appendAudit', entry: auditEntry({ resourceId: s.userId, subjects: ['x'] }) },
  ];

  it('succeeds when PostgreSQL, asked on another connection, says it committed', async () => {
    const proxy = new CommitAnswerProxy(url());
    await proxy.start();
    const driver = countingUnits(openPostgresDriver({ connectionString: proxy.via(url()) }));
    const store = new SqlStore(driver);
    // The truth, read past the proxy.
    const direct = new SqlStore(openPostgresDriver({ connectionString: url() }));
    try {
      await store.init();
      const s = await seed(store);
      const lost = proxy.loseNextCommitAnswer();
      const units = driver.units;
      const result = await store.commit(deactivation(s));
      await lost;
      expect(driver.units - units, 'one unit()').toBe(1);
      // The unit's own answer: what its statements returned before the connection was lost.
      expect((result.users.get(s.userId) as UserRecord).active).toBe(false);
      expect(store.writeFailureReason()).toBeNull();
      expect((await direct.getUser(s.userId))?.active).toBe(false);
      expect(await direct.intentsOf(`user:${s.userId}`)).toEqual([]);
    } finally {
      await store.close();
      await direct.close();
      await proxy.close();
    }
  });

  it('rejects with StoreUnavailableError when PostgreSQL cannot be asked in time (the change may have committed)', async () => {
    // Behind the COMMIT-answer proxy, one that can stop answering as an unreachable host would.
    const server = new URL(url());
    const unreachable = new BlackholeProxy(server.hostname, Number(server.port || 5432));
    await unreachable.start();
    const proxy = new CommitAnswerProxy(unreachable.via(url()));
    await proxy.start();
    // No connect timeout: a connection to the unreachable server would wait forever, so the unit
    // can only end by the driver's own bound on asking.
    const driver = openPostgresDriver({ connectionString: proxy.via(url()), connectionTimeoutMillis: 0 });
    const store = new SqlStore(driver);
    const direct = new SqlStore(openPostgresDriver({ connectionString: url() }));
    try {
      await store.init();
      const s = await seed(store);
      const lost = proxy.loseNextCommitAnswer().then(() => unreachable.blackhole());
      const err = await expectUnavailable(store.commit(deactivation(s)), 'commit');
      await lost;
      expect(err.reason).toBe('PostgreSQL: connection terminated');
      expect(store.writeFailureReason()).toBe('PostgreSQL: connection terminated');
      // It did commit: not acknowledged, and whoever retries finds the change made.
      expect((await direct.getUser(s.userId))?.active).toBe(false);
    } finally {
      // Ends the connection attempt still waiting on the unreachable server.
      await unreachable.close();
      await proxy.close();
      await store.close();
      await direct.close();
    }
  });

  it('rejects with StoreUnavailableError, storing nothing, when its backend dies inside COMMIT before committing', async () => {
    const driver = openPostgresDriver({ connectionString: url() });
    const store = new SqlStore(driver);
    const locks = await LockHolder.connect(url());
    try {
      await store.init();
      const s = await seed(store);
      // A deferred check that runs at COMMIT and waits on an advisory lock the test holds: the
      // unit's statements have all answered, and its backend is killed inside COMMIT. (After
      // init: the audit table exists however the tests of this file are picked.)
      await driver.query(
        `CREATE FUNCTION test_commit_gate() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN PERFORM pg_advisory_xact_lock(7316); RETURN NULL; END $$`,
      );
      await driver.query(
        `CREATE CONSTRAINT TRIGGER test_commit_gate AFTER INSERT ON audit DEFERRABLE INITIALLY DEFERRED
         FOR EACH ROW EXECUTE FUNCTION test_commit_gate()`,
      );
      const before = await dumpPg(driver);
      await locks.hold('SELECT pg_advisory_xact_lock(7316)');
      const pending = store.commit(deactivation(s));
      pending.catch(() => {});
      const victim = await locks.killNextWaiter(pending);
      await locks.release();
      expect(victim.query).toMatch(/^COMMIT/);
      const err = await expectUnavailable(pending, 'commit');
      expect(err.reason).toBe('PostgreSQL: 57P01');
      expect(await dumpPg(driver)).toEqual(before);
    } finally {
      await driver.query('DROP TRIGGER IF EXISTS test_commit_gate ON audit');
      await driver.query('DROP FUNCTION IF EXISTS test_commit_gate()');
      await locks.end();
      await store.close();
    }
  });
});
