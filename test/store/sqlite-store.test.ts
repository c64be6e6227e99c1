// The embedded store (SQLite): the shared contract in memory and in a DATA_DIR (where every test ends
// by reopening the directory: what was acknowledged must read back the same), plus what only a file
// has: its mode, WAL + FULL sync, readers beside the bridge, failures mapped to 503.
import { statSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { openStore } from '../../src/store/index.js';
import { iso } from '../../src/store/sql-common.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import type { BridgeStore } from '../../src/store/types.js';
import { type ContractTarget, newGroup, newUser, storeContract } from './contract.js';

const root = await mkdtemp(join(tmpdir(), 'sqlite-store-test-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
let dirs = 0;
const newDir = () => join(root, `d${++dirs}`);

/** Everything the store holds, through its own interface. */
async function observe(store: BridgeStore) {
  const users = await store.listUsers({}, 0, 10_000);
  const groups = await store.getGroups([...new Set(users.flatMap((u) => u.tombstoneGroupIds))]);
  return { users, groups, memberships: await store.groupsOfUsers(users.map((u) => u.scimId)) };
}

function samePeer(t: () => BridgeStore) {
  // One process owns the embedded store: concurrent callers share the instance.
  return async () => ({ store: t(), close: async () => {} });
}

storeContract<ContractTarget>(
  'SqliteStore (:memory:)',
  async () => {
    const target: ContractTarget = {
      store: await openStore({ inMemory: true }),
      reset: async () => {
        await target.store.close();
        target.store = await openStore({ inMemory: true });
      },
      peer: samePeer(() => target.store),
      close: () => target.store.close(),
    };
    return target;
  },
  {
    extra: () => {
      it('rejects every call once closed, as unavailable', async () => {
        const store = await openStore({ inMemory: true });
        await store.close();
        await store.close();
        await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.getUser('x')).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.insertUser(newUser())).rejects.toBeInstanceOf(StoreUnavailableError);
      });
    },
  },
);

type DirTarget = ContractTarget & { dataDir: string };

storeContract<DirTarget>(
  'SqliteStore (DATA_DIR)',
  async () => {
    const dataDir = newDir();
    const target: DirTarget = {
      dataDir,
      store: await openStore({ dataDir }),
      reset: async () => {
        await target.store.close();
        target.dataDir = newDir();
        target.store = await openStore({ dataDir: target.dataDir });
      },
      peer: samePeer(() => target.store),
      close: () => target.store.close(),
    };
    return target;
  },
  {
    extra: (target) => {
      afterEach(async () => {
        const t = target();
        const before = await observe(t.store);
        await t.store.close();
        t.store = await openStore({ dataDir: t.dataDir });
        expect(await observe(t.store)).toEqual(before);
      });

      it('keeps its files private, in WAL mode with synchronous=FULL', async () => {
        const t = target();
        await t.store.insertUser(newUser());
        const db = (t.store as SqliteStore).db;
        expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
        // 2 = FULL
        expect(db.pragma('synchronous', { simple: true })).toBe(2);
        // 2 = MEMORY: a unit's savepoint journal is not written out to a temporary file.
        expect(db.pragma('temp_store', { simple: true })).toBe(2);
        for (const f of ['bridge.sqlite', 'bridge.sqlite-wal', 'bridge.lock', 'volc-scim-bridge.json']) {
          expect(statSync(join(t.dataDir, f)).mode & 0o777, f).toBe(0o600);
        }
      });

      it('lets another connection read and back up the database while the store is open', async () => {
        const t = target();
        const u = await t.store.insertUser(newUser());
        const g = await t.store.insertGroup(newGroup());
        await t.store.addMembership(g.scimId, u.scimId);
        const reader = new Database(join(t.dataDir, 'bridge.sqlite'), { readonly: true });
        try {
          expect(reader.prepare('SELECT user_name FROM users').all()).toEqual([{ user_name: u.userName }]);
          const copy = join(root, `backup-${dirs}.sqlite`);
          await reader.backup(copy);
          // A write after the backup started is not in it; the store keeps working throughout.
          await t.store.insertUser(newUser());
          const backup = new Database(copy, { readonly: true });
          try {
            expect(backup.prepare('SELECT count(*) AS n FROM users').get()).toEqual({ n: 1 });
            expect(backup.prepare('SELECT count(*) AS n FROM memberships').get()).toEqual({ n: 1 });
          } finally {
            backup.close();
          }
        } finally {
          reader.close();
        }
        expect(await t.store.countUsers({})).toBe(2);
      });

      it('fails its readiness ping once the database file is removed or replaced underneath', async () => {
        const t = target();
        await t.store.ping();
        const file = join(t.dataDir, 'bridge.sqlite');
        await rename(file, `${file}.moved`);
        await expect(t.store.ping()).rejects.toThrow(/removed or replaced/);
        await rename(`${file}.moved`, file);
        await t.store.ping();
      });

      it('answers a write that waits out the busy timeout with StoreUnavailableError, changing nothing', async () => {
        const t = target();
        const db = (t.store as SqliteStore).db;
        db.pragma('busy_timeout = 50');
        const other = new Database(join(t.dataDir, 'bridge.sqlite'));
        try {
          other.exec('BEGIN IMMEDIATE');
          const error = await t.store.insertUser(newUser()).then(
            () => null,
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(StoreUnavailableError);
          expect((error as StoreUnavailableError).reason).toBe('SQLite SQLITE_BUSY');
          other.exec('ROLLBACK');
        } finally {
          other.close();
          db.pragma('busy_timeout = 5000');
        }
        expect(await t.store.countUsers({})).toBe(0);
        await t.store.insertUser(newUser());
      });
    },
  },
);

describe('SqliteStore and PostgreSQL share their SQL', () => {
  it('stores timestamps as ISO-8601 UTC text with milliseconds', async () => {
    const store = (await openStore({ inMemory: true })) as SqliteStore;
    try {
      const u = await store.insertUser(newUser());
      await store.updateUser(u.scimId, { active: false });
      const row = store.db.prepare('SELECT created_at, updated_at, active FROM users').get();
      expect(row).toEqual({ created_at: u.createdAt, updated_at: expect.stringMatching(/Z$/), active: 0 });
    } finally {
      await store.close();
    }
  });

  it('reads timestamps as toISOString writes them, whatever form the text is in', () => {
    const at = '2026-12-06T07:58:00.123Z';
    expect(iso(at)).toBe(at);
    expect(iso(new Date(at))).toBe(at);
    // Written by another tool: no milliseconds, an offset.
    expect(iso('2026-12-06T07:58:00Z')).toBe('2026-12-06T07:58:00.000Z');
    expect(iso('2026-12-06T08:58:00.123+01:00')).toBe(at);
  });
});
