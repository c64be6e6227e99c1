// One suite, three databases: embedded PGlite in memory, PGlite in a data directory, and a real
// PostgreSQL. The store runs the same SQL on all of them, so it must behave the same on all of them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SqlDriver } from '../../src/store/driver.js';
import { openStore } from '../../src/store/index.js';
import { MIGRATIONS, migrate } from '../../src/store/migrations.js';
import { openPGliteDriver } from '../../src/store/pglite-driver.js';
import { openPostgresDriver } from '../../src/store/postgres-driver.js';
import { SqlStore } from '../../src/store/sql-store.js';
import {
  type BridgeStore,
  type NewGroupRecord,
  type NewUserRecord,
  StoreConflictError,
  type UserChanges,
} from '../../src/store/types.js';
import { freshPostgresUrl } from '../helpers/postgres.js';

interface Target {
  driver: SqlDriver;
  store: SqlStore;
  /** Another store on the same database, as a second replica would open it. */
  peer(): Promise<{ store: SqlStore; close(): Promise<void> }>;
  close(): Promise<void>;
}

const ISO_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// Ids grow with insertion order, so (createdAt, scimId) order equals insertion order even when
// two rows share a created_at.
let seq = 0;
function nextId(): string {
  seq += 1;
  return String(seq).padStart(5, '0');
}

function newUser(over: Partial<NewUserRecord> = {}): NewUserRecord {
  const n = nextId();
  return {
    scimId: `u-${n}`,
    upstreamUserId: `up-${n}`,
    userName: `user${n}@example.com`,
    externalId: null,
    active: true,
    state: 'ready',
    attributes: { userName: `user${n}@example.com`, name: { givenName: 'Ada', familyName: 'Lovelace' } },
    tombstoneGroupIds: [],
    ...over,
  };
}

function newGroup(over: Partial<NewGroupRecord> = {}): NewGroupRecord {
  const n = nextId();
  return {
    scimId: `g-${n}`,
    groupName: `scim-group-${n}`,
    displayName: `Group ${n}`,
    externalId: null,
    attributes: { displayName: `Group ${n}` },
    ...over,
  };
}

async function expectConflict(promise: Promise<unknown>, field: StoreConflictError['field']): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreConflictError);
  expect((err as StoreConflictError).field).toBe(field);
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function storeSuite(
  name: string,
  setup: () => Promise<Target>,
  options: { skip?: string; extra?: (target: () => Target) => void } = {},
): void {
  describe.skipIf(options.skip !== undefined)(name, () => {
    let t: Target;
    beforeAll(async () => {
      t = await setup();
    });
    afterAll(async () => {
      await t?.close();
    });
    beforeEach(async () => {
      await t.driver.query('TRUNCATE users, groups, memberships');
    });

    describe('lifecycle', () => {
      it('answers ping', async () => {
        await expect(t.store.ping()).resolves.toBeUndefined();
      });

      it('init is idempotent and records every migration once', async () => {
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
    });

    describe('users', () => {
      it('inserts and reads back a user with version 1 and ISO-8601 UTC timestamps', async () => {
        const input = newUser({
          externalId: 'ext-1',
          attributes: {
            userName: 'x',
            emails: [{ value: 'a@example.com', primary: true }],
            'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': {
              department: 'R&D ✓',
              manager: null,
            },
            n: 1.5,
          },
          tombstoneGroupIds: ['g-a', 'g-b'],
        });
        const created = await t.store.insertUser(input);
        expect(created).toEqual({
          ...input,
          version: 1,
          createdAt: expect.any(String),
          updatedAt: expect.any(String),
        });
        expect(created.createdAt).toMatch(ISO_MS_UTC);
        expect(created.updatedAt).toBe(created.createdAt);
        expect(Math.abs(Date.parse(created.createdAt) - Date.now())).toBeLessThan(60_000);
        expect(await t.store.getUser(input.scimId)).toEqual(created);
      });

      it('returns null for an unknown user', async () => {
        expect(await t.store.getUser('nope')).toBeNull();
        expect(await t.store.findUserByUserName('nobody@example.com')).toBeNull();
        expect(await t.store.findUsersByExternalId('nope')).toEqual([]);
      });

      it('stores a pending, detached user', async () => {
        const pending = await t.store.insertUser(newUser({ upstreamUserId: null, state: 'pending' }));
        const other = await t.store.insertUser(newUser({ upstreamUserId: null, state: 'pending' }));
        expect(pending.upstreamUserId).toBeNull();
        expect((await t.store.getUser(other.scimId))?.state).toBe('pending');
      });

      it('finds users by userName case-insensitively, including non-ASCII letters', async () => {
        const u = await t.store.insertUser(newUser({ userName: 'Jörg.Ärger@Example.COM' }));
        expect(await t.store.findUserByUserName('jörg.ärger@example.com')).toEqual(u);
        expect(await t.store.findUserByUserName('JÖRG.ÄRGER@EXAMPLE.COM')).toEqual(u);
        expect((await t.store.getUser(u.scimId))?.userName).toBe('Jörg.Ärger@Example.COM');
      });

      it('rejects a userName taken in any case', async () => {
        await t.store.insertUser(newUser({ userName: 'Alice@Example.com' }));
        await expectConflict(t.store.insertUser(newUser({ userName: 'alice@example.com' })), 'userName');
        await expectConflict(t.store.insertUser(newUser({ userName: 'ALICE@EXAMPLE.COM' })), 'userName');
        await t.store.insertUser(newUser({ userName: 'Ärger@example.com' }));
        await expectConflict(t.store.insertUser(newUser({ userName: 'äRGER@example.com' })), 'userName');
        expect(await t.store.countUsers({})).toBe(2);
      });

      it('rejects a duplicate scimId or upstreamUserId', async () => {
        const u = await t.store.insertUser(newUser());
        await expectConflict(t.store.insertUser(newUser({ scimId: u.scimId })), 'scimId');
        await expectConflict(
          t.store.insertUser(newUser({ upstreamUserId: u.upstreamUserId })),
          'upstreamUserId',
        );
      });

      it('frees the userName when the user is deleted', async () => {
        const u = await t.store.insertUser(newUser({ userName: 'Reuse@example.com' }));
        expect(await t.store.deleteUser(u.scimId)).toBe(true);
        await expect(t.store.insertUser(newUser({ userName: 'reuse@example.com' }))).resolves.toBeTruthy();
      });

      it('finds all users with an externalId, case-sensitively, in creation order', async () => {
        const a = await t.store.insertUser(newUser({ externalId: 'X-1' }));
        const b = await t.store.insertUser(newUser({ externalId: 'X-1' }));
        await t.store.insertUser(newUser({ externalId: 'x-1' }));
        expect(await t.store.findUsersByExternalId('X-1')).toEqual([a, b]);
      });

      it('fetches users by upstream ids in one query', async () => {
        const a = await t.store.insertUser(newUser());
        const b = await t.store.insertUser(newUser());
        await t.store.insertUser(newUser());
        await t.store.insertUser(newUser({ upstreamUserId: null }));
        const counted = countingDriver(t.driver);
        const store = new SqlStore(counted.driver);

        const found = await store.getUsersByUpstreamIds([a.upstreamUserId!, 'missing', b.upstreamUserId!]);
        expect(counted.statements).toHaveLength(1);
        expect([...found.keys()].sort()).toEqual([a.upstreamUserId, b.upstreamUserId].sort());
        expect(found.get(a.upstreamUserId!)).toEqual(a);
        expect(found.get(b.upstreamUserId!)).toEqual(b);

        expect((await store.getUsersByUpstreamIds([])).size).toBe(0);
        expect(counted.statements).toHaveLength(1);
      });

      it('fetches a large batch of upstream ids in one query', async () => {
        const users = [];
        for (let i = 0; i < 50; i++) users.push(await t.store.insertUser(newUser()));
        const counted = countingDriver(t.driver);
        const ids = users.map((u) => u.upstreamUserId!);
        const found = await new SqlStore(counted.driver).getUsersByUpstreamIds([...ids, ...ids]);
        expect(found.size).toBe(50);
        expect(counted.statements).toHaveLength(1);
      });

      it('updates only the fields present, bumps version and updatedAt, keeps createdAt', async () => {
        const u = await t.store.insertUser(newUser({ externalId: 'keep' }));
        await sleep(5);
        const updated = await t.store.updateUser(u.scimId, {
          active: false,
          attributes: { userName: u.userName, title: 'CTO' },
          externalId: undefined,
        });
        expect(updated).toEqual({
          ...u,
          active: false,
          attributes: { userName: u.userName, title: 'CTO' },
          version: 2,
          updatedAt: expect.any(String),
        });
        expect(updated!.updatedAt).toMatch(ISO_MS_UTC);
        expect(updated!.updatedAt > u.updatedAt).toBe(true);
        expect(await t.store.getUser(u.scimId)).toEqual(updated);
      });

      it('writes null, arrays and every updatable field', async () => {
        const u = await t.store.insertUser(newUser({ externalId: 'e' }));
        const changes: UserChanges = {
          upstreamUserId: null,
          userName: 'renamed@example.com',
          externalId: null,
          active: false,
          state: 'pending',
          attributes: {},
          tombstoneGroupIds: ['g-1', 'g-2'],
        };
        const updated = await t.store.updateUser(u.scimId, changes);
        expect(updated).toEqual({ ...u, ...changes, version: 2, updatedAt: expect.any(String) });
        expect(await t.store.findUserByUserName('RENAMED@example.com')).toEqual(updated);
        expect(await t.store.findUserByUserName(u.userName)).toBeNull();
      });

      it('bumps the version on an empty change set', async () => {
        const u = await t.store.insertUser(newUser());
        expect((await t.store.updateUser(u.scimId, {}))?.version).toBe(2);
        expect((await t.store.updateUser(u.scimId, {}))?.version).toBe(3);
      });

      it('ignores keys that are not updatable fields', async () => {
        const u = await t.store.insertUser(newUser());
        const sneaky = {
          version: 99,
          scimId: 'hijack',
          createdAt: '2000-01-01T00:00:00.000Z',
        } as UserChanges;
        const updated = await t.store.updateUser(u.scimId, sneaky);
        expect(updated).toMatchObject({ scimId: u.scimId, version: 2, createdAt: u.createdAt });
      });

      it('returns null when updating a missing user', async () => {
        expect(await t.store.updateUser('missing', { active: false })).toBeNull();
        expect(await t.store.updateUser('missing', { active: false }, 1)).toBeNull();
      });

      it('applies a compare-and-set update only at the expected version', async () => {
        const u = await t.store.insertUser(newUser());
        const v2 = await t.store.updateUser(u.scimId, { externalId: 'a' }, 1);
        expect(v2).toMatchObject({ externalId: 'a', version: 2 });
        expect(await t.store.updateUser(u.scimId, { externalId: 'stale' }, 1)).toBeNull();
        expect(await t.store.updateUser(u.scimId, { externalId: 'future' }, 3)).toBeNull();
        expect(await t.store.getUser(u.scimId)).toEqual(v2);
      });

      it('lets exactly one of two concurrent compare-and-set updates win', async () => {
        const u = await t.store.insertUser(newUser());
        const peer = await t.peer();
        try {
          let version = u.version;
          for (let round = 0; round < 10; round++) {
            const results = await Promise.all([
              t.store.updateUser(u.scimId, { externalId: `mine-${round}` }, version),
              peer.store.updateUser(u.scimId, { externalId: `theirs-${round}` }, version),
            ]);
            const winners = results.filter((r) => r !== null);
            expect(winners).toHaveLength(1);
            const stored = await t.store.getUser(u.scimId);
            expect(stored).toEqual(winners[0]);
            expect(stored?.version).toBe(version + 1);
            version += 1;
          }
          // Many contenders at once (several pool connections on PostgreSQL).
          const many = await Promise.all(
            Array.from({ length: 8 }, (_, i) =>
              (i % 2 ? peer.store : t.store).updateUser(u.scimId, { externalId: `n-${i}` }, version),
            ),
          );
          expect(many.filter((r) => r !== null)).toHaveLength(1);
        } finally {
          await peer.close();
        }
      });

      it('never loses an increment under concurrent unconditional updates', async () => {
        const u = await t.store.insertUser(newUser());
        const peer = await t.peer();
        try {
          await Promise.all(
            Array.from({ length: 10 }, (_, i) => (i % 2 ? peer.store : t.store).updateUser(u.scimId, {})),
          );
        } finally {
          await peer.close();
        }
        expect((await t.store.getUser(u.scimId))?.version).toBe(11);
      });

      it('rejects a rename onto a name taken in any case, allows a case-only rename of itself', async () => {
        await t.store.insertUser(newUser({ userName: 'taken@example.com' }));
        const u = await t.store.insertUser(newUser({ userName: 'free@example.com' }));
        await expectConflict(t.store.updateUser(u.scimId, { userName: 'TAKEN@example.com' }), 'userName');
        await expectConflict(
          t.store.updateUser(u.scimId, { userName: 'Taken@Example.com' }, u.version),
          'userName',
        );
        expect(await t.store.getUser(u.scimId)).toEqual(u);
        const recased = await t.store.updateUser(u.scimId, { userName: 'FREE@example.com' }, u.version);
        expect(recased).toMatchObject({ userName: 'FREE@example.com', version: 2 });
      });

      it('deletes a user and its memberships only', async () => {
        const u = await t.store.insertUser(newUser());
        const other = await t.store.insertUser(newUser());
        await t.store.addMembership('g-1', u.scimId);
        await t.store.addMembership('g-2', u.scimId);
        await t.store.addMembership('g-1', other.scimId);

        expect(await t.store.deleteUser(u.scimId)).toBe(true);
        expect(await t.store.getUser(u.scimId)).toBeNull();
        expect(await t.store.groupsOfUser(u.scimId)).toEqual([]);
        expect(await t.store.groupsOfUser(other.scimId)).toEqual(['g-1']);
        expect(await t.store.getUser(other.scimId)).toEqual(other);
        expect(await t.store.deleteUser(u.scimId)).toBe(false);
      });

      it('clears the membership mirror of an id without a record, returning false', async () => {
        await t.store.addMembership('g-1', 'unmanaged-user');
        expect(await t.store.deleteUser('unmanaged-user')).toBe(false);
        expect(await t.store.groupsOfUser('unmanaged-user')).toEqual([]);
      });
    });

    describe('listUsers / countUsers', () => {
      async function seed() {
        const a = await t.store.insertUser(newUser()); // active, ready, attached
        const b = await t.store.insertUser(newUser({ active: false })); // inactive, attached
        const c = await t.store.insertUser(newUser({ upstreamUserId: null, state: 'pending' })); // pending
        const d = await t.store.insertUser(newUser({ upstreamUserId: null, active: false })); // tombstone
        const e = await t.store.insertUser(newUser());
        return { a, b, c, d, e };
      }

      it('filters by active, detached and state, in creation order', async () => {
        const { a, b, c, d, e } = await seed();
        const cases: Array<[Parameters<BridgeStore['listUsers']>[0], unknown[]]> = [
          [{}, [a, b, c, d, e]],
          [{ active: true }, [a, c, e]],
          [{ active: false }, [b, d]],
          [{ detached: true }, [c, d]],
          [{ detached: false }, [a, b, e]],
          [{ state: 'pending' }, [c]],
          [{ state: 'ready' }, [a, b, d, e]],
          [{ active: false, detached: true }, [d]],
          [{ active: true, state: 'ready', detached: false }, [a, e]],
          [{ active: true, state: 'pending', detached: false }, []],
        ];
        for (const [query, expected] of cases) {
          expect(await t.store.listUsers(query, 0, 100), JSON.stringify(query)).toEqual(expected);
          expect(await t.store.countUsers(query), JSON.stringify(query)).toBe(expected.length);
        }
      });

      it('pages with offset and limit', async () => {
        const { a, b, c, e } = await seed();
        expect(await t.store.listUsers({}, 0, 2)).toEqual([a, b]);
        expect(await t.store.listUsers({}, 1, 2)).toEqual([b, c]);
        expect(await t.store.listUsers({}, 4, 10)).toEqual([e]);
        expect(await t.store.listUsers({}, 5, 10)).toEqual([]);
        expect(await t.store.listUsers({}, 0, 0)).toEqual([]);
        expect(await t.store.listUsers({ active: true }, 1, 1)).toEqual([c]);
      });

      it('orders by creation time before scimId', async () => {
        const first = await t.store.insertUser(newUser({ scimId: 'zzz-created-first' }));
        await sleep(5);
        const second = await t.store.insertUser(newUser({ scimId: 'aaa-created-second' }));
        expect(await t.store.listUsers({}, 0, 10)).toEqual([first, second]);
      });

      it('counts zero on an empty store', async () => {
        expect(await t.store.countUsers({})).toBe(0);
        expect(await t.store.listUsers({ detached: true }, 0, 10)).toEqual([]);
      });
    });

    describe('groups', () => {
      it('inserts and reads back a group', async () => {
        const input = newGroup({ externalId: 'ext-g', attributes: { displayName: 'Eng', members: [] } });
        const created = await t.store.insertGroup(input);
        expect(created).toEqual({
          ...input,
          version: 1,
          createdAt: expect.any(String),
          updatedAt: expect.any(String),
        });
        expect(created.createdAt).toMatch(ISO_MS_UTC);
        expect(await t.store.getGroup(input.scimId)).toEqual(created);
        expect(await t.store.getGroup('missing')).toBeNull();
      });

      it('finds groups by displayName case-insensitively and by externalId', async () => {
        const g = await t.store.insertGroup(newGroup({ displayName: 'Engineering Ü', externalId: 'E' }));
        const h = await t.store.insertGroup(newGroup({ externalId: 'E' }));
        expect(await t.store.findGroupByDisplayName('ENGINEERING ü')).toEqual(g);
        expect(await t.store.findGroupByDisplayName('nope')).toBeNull();
        expect(await t.store.findGroupsByExternalId('E')).toEqual([g, h]);
        expect(await t.store.findGroupsByExternalId('e')).toEqual([]);
      });

      it('rejects a displayName taken in any case and a duplicate scimId', async () => {
        const g = await t.store.insertGroup(newGroup({ displayName: 'Sales' }));
        await expectConflict(t.store.insertGroup(newGroup({ displayName: 'SALES' })), 'displayName');
        await expectConflict(t.store.insertGroup(newGroup({ scimId: g.scimId })), 'scimId');
      });

      it('fetches groups by ids in one query', async () => {
        const g = await t.store.insertGroup(newGroup());
        const h = await t.store.insertGroup(newGroup());
        await t.store.insertGroup(newGroup());
        const counted = countingDriver(t.driver);
        const store = new SqlStore(counted.driver);
        const found = await store.getGroups([g.scimId, 'missing', h.scimId]);
        expect(counted.statements).toHaveLength(1);
        expect(found).toEqual(
          new Map([
            [g.scimId, g],
            [h.scimId, h],
          ]),
        );
        expect((await store.getGroups([])).size).toBe(0);
        expect(counted.statements).toHaveLength(1);
      });

      it('updates only the fields present and supports compare-and-set', async () => {
        const g = await t.store.insertGroup(newGroup({ externalId: 'keep' }));
        const v2 = await t.store.updateGroup(
          g.scimId,
          { displayName: 'Renamed', attributes: { displayName: 'Renamed' } },
          1,
        );
        expect(v2).toEqual({
          ...g,
          displayName: 'Renamed',
          attributes: { displayName: 'Renamed' },
          version: 2,
          updatedAt: expect.any(String),
        });
        expect(await t.store.updateGroup(g.scimId, { externalId: 'stale' }, 1)).toBeNull();
        expect(await t.store.getGroup(g.scimId)).toEqual(v2);
        expect(await t.store.findGroupByDisplayName('renamed')).toEqual(v2);
        const v3 = await t.store.updateGroup(g.scimId, { externalId: null, groupName: 'new-name' });
        expect(v3).toMatchObject({ externalId: null, groupName: 'new-name', version: 3 });
        expect(await t.store.updateGroup('missing', { externalId: 'x' })).toBeNull();
      });

      it('lets exactly one of two concurrent compare-and-set group updates win', async () => {
        const g = await t.store.insertGroup(newGroup());
        const peer = await t.peer();
        try {
          const results = await Promise.all([
            t.store.updateGroup(g.scimId, { externalId: 'a' }, 1),
            peer.store.updateGroup(g.scimId, { externalId: 'b' }, 1),
          ]);
          expect(results.filter((r) => r !== null)).toHaveLength(1);
        } finally {
          await peer.close();
        }
        expect((await t.store.getGroup(g.scimId))?.version).toBe(2);
      });

      it('rejects a rename onto a taken displayName, allows a case-only rename of itself', async () => {
        await t.store.insertGroup(newGroup({ displayName: 'Ops' }));
        const g = await t.store.insertGroup(newGroup({ displayName: 'Dev' }));
        await expectConflict(t.store.updateGroup(g.scimId, { displayName: 'OPS' }), 'displayName');
        expect(await t.store.getGroup(g.scimId)).toEqual(g);
        expect(await t.store.updateGroup(g.scimId, { displayName: 'DEV' })).toMatchObject({
          displayName: 'DEV',
        });
      });

      it('deletes a group and its memberships only', async () => {
        const g = await t.store.insertGroup(newGroup());
        const h = await t.store.insertGroup(newGroup());
        await t.store.addMembership(g.scimId, 'u-1');
        await t.store.addMembership(h.scimId, 'u-1');
        await t.store.addMembership(g.scimId, 'u-2');
        expect(await t.store.deleteGroup(g.scimId)).toBe(true);
        expect(await t.store.getGroup(g.scimId)).toBeNull();
        expect(await t.store.groupsOfUser('u-1')).toEqual([h.scimId]);
        expect(await t.store.groupsOfUser('u-2')).toEqual([]);
        expect(await t.store.deleteGroup(g.scimId)).toBe(false);
        // The name is free again.
        await expect(t.store.insertGroup(newGroup({ displayName: g.displayName }))).resolves.toBeTruthy();
      });
    });

    describe('memberships', () => {
      it('adds idempotently, removes, and lists a user’s groups sorted', async () => {
        await t.store.addMembership('g-b', 'u-1');
        await t.store.addMembership('g-a', 'u-1');
        await t.store.addMembership('g-a', 'u-1');
        await t.store.addMembership('g-a', 'u-2');
        expect(await t.store.groupsOfUser('u-1')).toEqual(['g-a', 'g-b']);
        await t.store.removeMembership('g-b', 'u-1');
        await t.store.removeMembership('g-b', 'u-1');
        await t.store.removeMembership('g-x', 'u-9');
        expect(await t.store.groupsOfUser('u-1')).toEqual(['g-a']);
        expect(await t.store.groupsOfUser('u-2')).toEqual(['g-a']);
        expect(await t.store.groupsOfUser('nobody')).toEqual([]);
      });

      it('survives concurrent adds of the same membership', async () => {
        const peer = await t.peer();
        try {
          await Promise.all(
            Array.from({ length: 6 }, (_, i) => (i % 2 ? peer.store : t.store).addMembership('g-1', 'u-1')),
          );
        } finally {
          await peer.close();
        }
        expect(await t.store.groupsOfUser('u-1')).toEqual(['g-1']);
      });
    });

    options.extra?.(() => t);
  });
}

describe('migrations', () => {
  it('have unique, increasing versions', () => {
    const versions = MIGRATIONS.map((m) => m.version);
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
    expect(new Set(versions).size).toBe(versions.length);
  });
});

/** A store over a driver it shares with `peer()` stores: one PGlite is one database. */
async function pgliteTarget(dataDir?: string): Promise<Target> {
  const driver = await openPGliteDriver({ dataDir });
  const store = new SqlStore(driver);
  await store.init();
  let closed = false;
  return {
    driver,
    store,
    peer: async () => ({ store: new SqlStore(driver), close: async () => {} }),
    close: async () => {
      if (closed) return;
      closed = true;
      await driver.close();
    },
  };
}

storeSuite('SqlStore on PGlite (in memory)', () => pgliteTarget(), {
  extra: () => {
    it('openStore({ inMemory: true }) opens a migrated store', async () => {
      const store = await openStore({ inMemory: true });
      try {
        const u = await store.insertUser(newUser());
        expect(await store.getUser(u.scimId)).toEqual(u);
      } finally {
        await store.close();
      }
    });
  },
});

const dataDir = await mkdtemp(join(tmpdir(), 'scim-store-test-'));
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

storeSuite('SqlStore on PGlite (DATA_DIR)', () => pgliteTarget(dataDir), {
  extra: (target) => {
    it('keeps its data across close and reopen, without re-running migrations', async () => {
      const t = target();
      const u = await t.store.insertUser(newUser({ tombstoneGroupIds: ['g-1'] }));
      const g = await t.store.insertGroup(newGroup());
      await t.store.addMembership(g.scimId, u.scimId);
      await t.close();

      const lines: string[] = [];
      const logger = pino(
        { level: 'info' },
        new Writable({
          write(chunk, _enc, done) {
            lines.push(String(chunk));
            done();
          },
        }),
      );
      const reopened = await openStore({ dataDir, logger });
      try {
        expect(await reopened.getUser(u.scimId)).toEqual(u);
        expect(await reopened.getGroup(g.scimId)).toEqual(g);
        expect(await reopened.groupsOfUser(u.scimId)).toEqual([g.scimId]);
        expect(lines.some((l) => l.includes('store migration applied'))).toBe(false);
        expect(lines.some((l) => l.includes('store ready'))).toBe(true);
      } finally {
        await reopened.close();
      }
    });
  },
});

const pgSchema = await freshPostgresUrl('store_test');
if ('skip' in pgSchema) console.warn(`[test/store] skipping the PostgreSQL suite: ${pgSchema.skip}`);
afterAll(async () => {
  if ('url' in pgSchema) await pgSchema.drop();
});

storeSuite(
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
      it('uses its own schema, not public', async () => {
        const rows = await target().driver.query<{ schema: string }>('SELECT current_schema() AS schema');
        expect(rows[0].schema).toMatch(/^store_test_[0-9a-f]{12}$/);
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
