// The behavioural contract of a BridgeStore, run against every implementation: the embedded
// store (SQLite, :memory: and in a DATA_DIR) and SqlStore on PostgreSQL. Whatever the request path may
// observe must be the same on all of them.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/store/audit-types.js';
import {
  type BridgeStore,
  type GroupChanges,
  type NewGroupRecord,
  type NewUserRecord,
  StoreConflictError,
  StoreStaleError,
  type UserChanges,
} from '../../src/store/types.js';

export interface ContractTarget {
  store: BridgeStore;
  /** Empties the store before each test; may replace `store`. */
  reset(): Promise<void>;
  /**
   * Another handle on the same data, as a second replica would open it (SQL), or the same store
   * (the embedded store has one owner).
   */
  peer(): Promise<{ store: BridgeStore; close(): Promise<void> }>;
  close(): Promise<void>;
}

export const ISO_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// Ids grow with insertion order, so (createdAt, scimId) order equals insertion order even when
// two rows share a created_at.
let seq = 0;
export function nextId(): string {
  seq += 1;
  return String(seq).padStart(5, '0');
}

export function newUser(over: Partial<NewUserRecord> = {}): NewUserRecord {
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

export function newGroup(over: Partial<NewGroupRecord> = {}): NewGroupRecord {
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

export async function expectConflict(
  promise: Promise<unknown>,
  field: StoreConflictError['field'],
): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreConflictError);
  expect((err as StoreConflictError).field).toBe(field);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function storeContract<T extends ContractTarget>(
  name: string,
  setup: () => Promise<T>,
  options: { skip?: string; extra?: (target: () => T) => void } = {},
): void {
  describe.skipIf(options.skip !== undefined)(name, () => {
    let t: T;
    beforeAll(async () => {
      t = await setup();
    });
    afterAll(async () => {
      await t?.close();
    });
    beforeEach(async () => {
      await t.reset();
    });

    describe('lifecycle', () => {
      it('answers ping', async () => {
        await expect(t.store.ping()).resolves.toBeUndefined();
      });

      it('init is idempotent', async () => {
        await t.store.init();
        await t.store.init();
        const u = await t.store.insertUser(newUser());
        await t.store.init();
        expect(await t.store.getUser(u.scimId)).toEqual(u);
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

      it('fetches users by upstream ids', async () => {
        const a = await t.store.insertUser(newUser());
        const b = await t.store.insertUser(newUser());
        await t.store.insertUser(newUser());
        await t.store.insertUser(newUser({ upstreamUserId: null }));
        const found = await t.store.getUsersByUpstreamIds([a.upstreamUserId!, 'missing', b.upstreamUserId!]);
        expect([...found.keys()].sort()).toEqual([a.upstreamUserId, b.upstreamUserId].sort());
        expect(found.get(a.upstreamUserId!)).toEqual(a);
        expect(found.get(b.upstreamUserId!)).toEqual(b);
        expect((await t.store.getUsersByUpstreamIds([])).size).toBe(0);
        const twice = await t.store.getUsersByUpstreamIds([a.upstreamUserId!, a.upstreamUserId!]);
        expect([...twice.values()]).toEqual([a]);
      });

      it('fetches a large batch of upstream ids', async () => {
        const users = [];
        for (let i = 0; i < 50; i++) users.push(await t.store.insertUser(newUser()));
        const ids = users.map((u) => u.upstreamUserId!);
        const found = await t.store.getUsersByUpstreamIds([...ids, ...ids]);
        expect(found.size).toBe(50);
        expect(found.get(ids[49])).toEqual(users[49]);
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

      it("reports the first unique constraint in PostgreSQL's order: scimId, upstreamUserId, userName", async () => {
        const u = await t.store.insertUser(newUser());
        await expectConflict(
          t.store.insertUser(
            newUser({ scimId: u.scimId, upstreamUserId: u.upstreamUserId, userName: u.userName }),
          ),
          'scimId',
        );
        await expectConflict(
          t.store.insertUser(
            newUser({ upstreamUserId: u.upstreamUserId, userName: u.userName.toUpperCase() }),
          ),
          'upstreamUserId',
        );
        const v = await t.store.insertUser(newUser());
        await expectConflict(
          t.store.updateUser(v.scimId, { upstreamUserId: u.upstreamUserId, userName: u.userName }),
          'upstreamUserId',
        );
      });

      it('changes nothing when a write fails on a conflict', async () => {
        const u = await t.store.insertUser(newUser({ userName: 'held@example.com' }));
        const failed = newUser({ userName: 'HELD@example.com', externalId: 'ext-failed' });
        await expectConflict(t.store.insertUser(failed), 'userName');
        expect(await t.store.getUser(failed.scimId)).toBeNull();
        expect((await t.store.getUsersByUpstreamIds([failed.upstreamUserId!])).size).toBe(0);
        expect(await t.store.findUsersByExternalId('ext-failed')).toEqual([]);
        expect(await t.store.countUsers({})).toBe(1);
        // The upstreamUserId the failed insert carried is still free.
        await t.store.insertUser(newUser({ upstreamUserId: failed.upstreamUserId }));

        const v = await t.store.insertUser(newUser({ externalId: 'ext-v' }));
        await expectConflict(
          t.store.updateUser(v.scimId, {
            userName: 'held@EXAMPLE.com',
            externalId: 'ext-other',
            active: false,
          }),
          'userName',
        );
        expect(await t.store.getUser(v.scimId)).toEqual(v);
        expect(await t.store.findUsersByExternalId('ext-other')).toEqual([]);
        expect(await t.store.findUserByUserName(u.userName)).toEqual(u);
        expect(await t.store.countUsers({ active: false })).toBe(0);
      });

      it('refuses a record that breaks a NOT NULL or CHECK constraint, changing nothing', async () => {
        const bad = [
          { ...newUser(), state: 'bogus' },
          { ...newUser(), userName: null },
          { ...newUser(), active: null },
        ] as unknown as NewUserRecord[];
        for (const record of bad) {
          const error = await t.store.insertUser(record).then(
            () => null,
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(Error);
          expect(error).not.toBeInstanceOf(StoreConflictError);
          expect(await t.store.getUser(record.scimId)).toBeNull();
        }
        const u = await t.store.insertUser(newUser());
        for (const changes of [
          { userName: null },
          { state: 'gone' },
          { active: null },
        ] as unknown as UserChanges[]) {
          await expect(t.store.updateUser(u.scimId, changes)).rejects.toThrow();
        }
        const g = await t.store.insertGroup(newGroup());
        await expect(
          t.store.updateGroup(g.scimId, { displayName: null } as unknown as GroupChanges),
        ).rejects.toThrow();
        expect(await t.store.getUser(u.scimId)).toEqual(u);
        expect(await t.store.getGroup(g.scimId)).toEqual(g);
        expect(await t.store.countUsers({})).toBe(1);
      });

      it('maps a user to an upstream user again after it was detached', async () => {
        const u = await t.store.insertUser(newUser());
        const detached = await t.store.updateUser(u.scimId, { upstreamUserId: null });
        expect((await t.store.getUsersByUpstreamIds([u.upstreamUserId!])).size).toBe(0);
        expect(await t.store.listUsers({ detached: true }, 0, 10)).toEqual([detached]);
        // The freed upstream id can be taken by another record, and this one can map to a new one.
        const other = await t.store.insertUser(newUser({ upstreamUserId: u.upstreamUserId }));
        const remapped = await t.store.updateUser(u.scimId, { upstreamUserId: 'up-new' });
        expect(await t.store.listUsers({ detached: true }, 0, 10)).toEqual([]);
        expect(await t.store.getUsersByUpstreamIds([u.upstreamUserId!, 'up-new'])).toEqual(
          new Map([
            [u.upstreamUserId!, other],
            ['up-new', remapped!],
          ]),
        );
      });

      it('hands out copies: mutating a result or an input does not change the store', async () => {
        const input = newUser({ tombstoneGroupIds: ['g-1'], externalId: 'copy' });
        const created = await t.store.insertUser(input);
        const snapshot = structuredClone(created);
        (input.attributes.name as Record<string, unknown>).givenName = 'Mutated input';
        input.tombstoneGroupIds.push('g-input');
        (created.attributes.name as Record<string, unknown>).givenName = 'Mutated result';
        created.tombstoneGroupIds.push('g-result');
        created.userName = 'mutated@example.com';
        expect(await t.store.getUser(input.scimId)).toEqual(snapshot);

        const changes = { attributes: { nested: { list: [1, 2] } } };
        const updated = await t.store.updateUser(input.scimId, changes);
        changes.attributes.nested.list.push(3);
        const read = (await t.store.getUser(input.scimId))!;
        expect(read.attributes).toEqual({ nested: { list: [1, 2] } });
        (read.attributes.nested as { list: number[] }).list.push(4);
        for (const found of [
          await t.store.findUserByUserName(input.userName),
          (await t.store.findUsersByExternalId('copy'))[0],
          (await t.store.listUsers({}, 0, 10))[0],
          (await t.store.getUsersByUpstreamIds([input.upstreamUserId!])).get(input.upstreamUserId!),
        ]) {
          expect(found).toEqual(updated);
        }

        const g = await t.store.insertGroup(newGroup({ attributes: { displayName: 'x', members: [] } }));
        (g.attributes.members as unknown[]).push('m');
        expect((await t.store.getGroup(g.scimId))?.attributes).toEqual({ displayName: 'x', members: [] });
        const groups = await t.store.groupsOfUser('nobody');
        groups.push('g-x');
        expect(await t.store.groupsOfUser('nobody')).toEqual([]);
      });

      it('keeps JSON attributes as JSON does (undefined members dropped, keys like __proto__ kept)', async () => {
        const attributes = JSON.parse('{"__proto__": {"x": 1}, "a": [1, null, "s"], "u": "ü ✓"}') as Record<
          string,
          unknown
        >;
        attributes.dropped = undefined;
        const u = await t.store.insertUser(newUser({ attributes }));
        const read = (await t.store.getUser(u.scimId))!;
        expect(Object.keys(read.attributes).sort()).toEqual(['__proto__', 'a', 'u']);
        expect(read.attributes).toEqual(JSON.parse(JSON.stringify(attributes)));
        expect(Object.getOwnPropertyDescriptor(read.attributes, '__proto__')?.value).toEqual({ x: 1 });
        expect(Object.getPrototypeOf(read.attributes)).toBe(Object.prototype);
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

      it('fetches users by ids', async () => {
        const u = await t.store.insertUser(newUser());
        const v = await t.store.insertUser(newUser());
        await t.store.insertUser(newUser());
        const found = await t.store.getUsers([u.scimId, 'missing', v.scimId, u.scimId]);
        expect(found).toEqual(
          new Map([
            [u.scimId, u],
            [v.scimId, v],
          ]),
        );
        expect((await t.store.getUsers([])).size).toBe(0);
      });

      it('fetches groups by ids', async () => {
        const g = await t.store.insertGroup(newGroup());
        const h = await t.store.insertGroup(newGroup());
        await t.store.insertGroup(newGroup());
        const found = await t.store.getGroups([g.scimId, 'missing', h.scimId, g.scimId]);
        expect(found).toEqual(
          new Map([
            [g.scimId, g],
            [h.scimId, h],
          ]),
        );
        expect((await t.store.getGroups([])).size).toBe(0);
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

      it('lists the groups of many users at once, only for users with memberships', async () => {
        await t.store.addMembership('g-b', 'u-1');
        await t.store.addMembership('g-a', 'u-1');
        await t.store.addMembership('g-c', 'u-2');
        const found = await t.store.groupsOfUsers(['u-1', 'u-2', 'u-none', 'u-1']);
        expect(found).toEqual(
          new Map([
            ['u-1', ['g-a', 'g-b']],
            ['u-2', ['g-c']],
          ]),
        );
        expect((await t.store.groupsOfUsers([])).size).toBe(0);
        await t.store.removeMembership('g-c', 'u-2');
        expect([...(await t.store.groupsOfUsers(['u-1', 'u-2'])).keys()]).toEqual(['u-1']);
      });

      it('reads a user with its groups in one query: ordered, named when the group has a record', async () => {
        const u = await t.store.insertUser(newUser());
        expect(await t.store.getUserWithGroups(u.scimId)).toEqual({ record: u, groups: [] });
        const g = await t.store.insertGroup(newGroup());
        await t.store.addMembership('g-zz-no-record', u.scimId);
        await t.store.addMembership(g.scimId, u.scimId);
        await t.store.addMembership(g.scimId, 'someone-else');
        const found = await t.store.getUserWithGroups(u.scimId);
        expect(found?.record).toEqual(await t.store.getUser(u.scimId));
        expect(found?.groups).toEqual(
          [
            { scimId: g.scimId, displayName: g.displayName },
            { scimId: 'g-zz-no-record', displayName: null },
          ].sort((a, b) => (a.scimId < b.scimId ? -1 : 1)),
        );
        expect(found?.groups.map((x) => x.scimId)).toEqual(await t.store.groupsOfUser(u.scimId));
        expect(await t.store.getUserWithGroups('nobody')).toBeNull();
      });

      it("removes a group's memberships with it, and the mirror of a group id without a record", async () => {
        const g = await t.store.insertGroup(newGroup());
        await t.store.addMembership(g.scimId, 'u-1');
        expect(await t.store.deleteGroup(g.scimId)).toBe(true);
        await t.store.addMembership(g.scimId, 'u-1');
        expect(await t.store.groupsOfUser('u-1')).toEqual([g.scimId]);
        // A membership mirror of a group without a record is removed with deleteGroup too.
        expect(await t.store.deleteGroup(g.scimId)).toBe(false);
        expect(await t.store.groupsOfUser('u-1')).toEqual([]);
      });
    });

    describe('intents', () => {
      const intent = (resource: string, kind = 'user.deactivate') => ({
        id: `i-${nextId()}`,
        resource,
        kind,
        payload: { scimId: resource.slice(5), changes: { active: false, note: 'ü ✓' } },
      });

      it('puts an intent due at once, with no attempts, and reads it back by resource and as due', async () => {
        const put = await t.store.putIntent(intent('user:u-1'));
        expect(put).toMatchObject({
          resource: 'user:u-1',
          kind: 'user.deactivate',
          attempts: 0,
          lastError: null,
        });
        expect(put.payload).toEqual({ scimId: 'u-1', changes: { active: false, note: 'ü ✓' } });
        expect(put.createdAt).toMatch(ISO_MS_UTC);
        expect(put.nextAttemptAt).toMatch(ISO_MS_UTC);
        expect(await t.store.intentsOf('user:u-1')).toEqual([put]);
        expect(await t.store.intentsOf('user:u-2')).toEqual([]);
        expect(await t.store.dueIntents(new Date(Date.now() + 1000), 10)).toEqual([put]);
        expect(await t.store.countIntents()).toBe(1);
      });

      it('lists a resource oldest first, and clears one (twice is harmless)', async () => {
        const a = await t.store.putIntent(intent('group:g-1', 'group.members'));
        await sleep(5);
        const b = await t.store.putIntent(intent('group:g-1', 'group.delete'));
        await t.store.putIntent(intent('group:g-2', 'group.members'));
        expect((await t.store.intentsOf('group:g-1')).map((i) => i.id)).toEqual([a.id, b.id]);
        await t.store.clearIntent(a.id);
        await t.store.clearIntent(a.id);
        expect((await t.store.intentsOf('group:g-1')).map((i) => i.id)).toEqual([b.id]);
        expect(await t.store.countIntents()).toBe(2);
      });

      it('records attempts with backoff: an intent is not due before its next attempt, and the limit holds', async () => {
        const a = await t.store.putIntent(intent('user:u-a'));
        const b = await t.store.putIntent(intent('user:u-b'));
        const later = new Date(Date.now() + 60_000);
        await t.store.recordIntentAttempt(a.id, 'InternalError: boom', later);
        await t.store.recordIntentAttempt(a.id, 'x'.repeat(2000), later);
        const now = new Date(Date.now() + 1000);
        expect((await t.store.dueIntents(now, 10)).map((i) => i.id)).toEqual([b.id]);
        expect(await t.store.dueIntents(now, 0)).toEqual([]);
        const [after] = await t.store.intentsOf('user:u-a');
        expect(after.attempts).toBe(2);
        expect(after.lastError!.length).toBeLessThanOrEqual(500);
        expect(Date.parse(after.nextAttemptAt)).toBe(later.getTime());
        expect((await t.store.dueIntents(new Date(later.getTime() + 1), 1)).length).toBe(1);
        await t.store.recordIntentAttempt('missing', 'e', later);
      });

      it("lists group ids from records and the membership mirror, in pages, and a group's mirror members", async () => {
        await t.store.insertGroup(newGroup({ scimId: 'g-b' }));
        await t.store.addMembership('g-a', 'u-2');
        await t.store.addMembership('g-a', 'u-1');
        await t.store.addMembership('g-b', 'u-1');
        await t.store.addMembership('g-c', 'u-3');
        expect(await t.store.groupIdsAfter('', 2)).toEqual(['g-a', 'g-b']);
        expect(await t.store.groupIdsAfter('g-b', 2)).toEqual(['g-c']);
        expect(await t.store.groupIdsAfter('g-c', 2)).toEqual([]);
        expect(await t.store.membersOfGroup('g-a')).toEqual(['u-1', 'u-2']);
        expect(await t.store.membersOfGroup('g-none')).toEqual([]);
      });
    });

    describe('commit: one unit of work', () => {
      const intent = (resource: string) => ({
        id: `i-${nextId()}`,
        resource,
        kind: 'user.deactivate',
        payload: { n: 1 },
      });

      it('applies its writes in order and reports every record it wrote, as committed', async () => {
        const user = newUser();
        const group = newGroup();
        const i1 = intent(`user:${user.scimId}`);
        const result = await t.store.commit([
          { op: 'insertUser', record: user },
          { op: 'updateUser', scimId: user.scimId, changes: { active: false }, expectedVersion: 1 },
          { op: 'insertGroup', record: group },
          { op: 'addMembership', groupScimId: group.scimId, userScimId: user.scimId },
          { op: 'putIntent', intent: i1 },
          { op: 'updateGroup', scimId: group.scimId, changes: { displayName: 'Renamed' } },
          { op: 'appendAudit', entry: auditEntry({ resourceId: user.scimId }) },
        ]);
        const stored = await t.store.getUser(user.scimId);
        expect(stored).toMatchObject({ active: false, version: 2 });
        expect(result.users).toEqual(new Map([[user.scimId, stored]]));
        expect(result.groups).toEqual(new Map([[group.scimId, await t.store.getGroup(group.scimId)]]));
        expect(result.groups.get(group.scimId)).toMatchObject({ displayName: 'Renamed', version: 2 });
        expect([...result.intents.keys()]).toEqual([i1.id]);
        expect(await t.store.intentsOf(`user:${user.scimId}`)).toEqual([result.intents.get(i1.id)]);
        expect(await t.store.groupsOfUser(user.scimId)).toEqual([group.scimId]);
        expect(await t.store.listAudit({ resource: user.scimId, limit: 10 })).toHaveLength(1);
      });

      it('reports deletes as deleted, a delete of a missing record not at all, and resolves an empty unit', async () => {
        const u = await t.store.insertUser(newUser());
        const g = await t.store.insertGroup(newGroup());
        await t.store.addMembership(g.scimId, u.scimId);
        const i1 = await t.store.putIntent(intent(`user:${u.scimId}`));
        const result = await t.store.commit([
          { op: 'deleteUser', scimId: u.scimId },
          { op: 'deleteUser', scimId: 'u-missing' },
          { op: 'deleteGroup', scimId: g.scimId },
          { op: 'deleteGroup', scimId: 'g-missing' },
          { op: 'clearIntent', id: i1.id },
          { op: 'clearIntent', id: 'i-missing' },
          { op: 'removeMembership', groupScimId: 'g-x', userScimId: 'u-x' },
        ]);
        expect(result.users).toEqual(new Map([[u.scimId, 'deleted']]));
        expect(result.groups).toEqual(new Map([[g.scimId, 'deleted']]));
        expect(result.intents.size).toBe(0);
        expect(await t.store.getUser(u.scimId)).toBeNull();
        expect(await t.store.groupsOfUser(u.scimId)).toEqual([]);
        expect(await t.store.countIntents()).toBe(0);
        const empty = await t.store.commit([]);
        expect([empty.users.size, empty.groups.size, empty.intents.size]).toEqual([0, 0, 0]);
      });

      it('applies none of a unit that breaks a unique constraint', async () => {
        const taken = await t.store.insertUser(newUser());
        const fresh = newUser();
        const group = newGroup();
        const err = await t.store
          .commit([
            { op: 'insertGroup', record: group },
            { op: 'putIntent', intent: intent('user:x') },
            { op: 'appendAudit', entry: auditEntry({ resourceId: fresh.scimId }) },
            { op: 'insertUser', record: fresh },
            { op: 'updateUser', scimId: fresh.scimId, changes: { userName: taken.userName.toUpperCase() } },
          ])
          .then(
            () => null,
            (e: unknown) => e,
          );
        expect(err).toBeInstanceOf(StoreConflictError);
        expect((err as StoreConflictError).field).toBe('userName');
        expect(await t.store.getGroup(group.scimId)).toBeNull();
        expect(await t.store.getUser(fresh.scimId)).toBeNull();
        expect(await t.store.countIntents()).toBe(0);
        expect(await t.store.listAudit({ limit: 10 })).toEqual([]);
        expect(await t.store.getUser(taken.scimId)).toEqual(taken);
      });

      it('applies none of a unit without updates whose last insert breaks a unique constraint', async () => {
        // PostgreSQL sends such a unit's COMMIT with its statements: the failure must still undo all.
        const taken = await t.store.insertUser(newUser());
        const group = newGroup();
        const clash = { ...newUser(), userName: taken.userName.toUpperCase() };
        const err = await t.store
          .commit([
            { op: 'insertGroup', record: group },
            { op: 'putIntent', intent: intent('user:x') },
            { op: 'appendAudit', entry: auditEntry({ resourceId: clash.scimId, subjects: ['someone'] }) },
            { op: 'insertUser', record: clash },
          ])
          .then(
            () => null,
            (e: unknown) => e,
          );
        expect(err).toBeInstanceOf(StoreConflictError);
        expect((err as StoreConflictError).field).toBe('userName');
        expect(await t.store.getGroup(group.scimId)).toBeNull();
        expect(await t.store.getUser(clash.scimId)).toBeNull();
        expect(await t.store.countIntents()).toBe(0);
        expect(await t.store.listAudit({ limit: 10 })).toEqual([]);
        // The connection it ran on serves the next unit as usual.
        const next = newGroup();
        await t.store.commit([
          { op: 'insertGroup', record: next },
          { op: 'appendAudit', entry: auditEntry({ resourceId: next.scimId }) },
        ]);
        expect(await t.store.getGroup(next.scimId)).toMatchObject({ scimId: next.scimId });
        expect(await t.store.listAudit({ limit: 10 })).toHaveLength(1);
      });

      it('applies none of a unit whose update finds its record missing or at another version', async () => {
        const u = await t.store.insertUser(newUser());
        await t.store.updateUser(u.scimId, { externalId: 'e1' });
        for (const stale of [
          { op: 'updateUser', scimId: u.scimId, changes: { active: false }, expectedVersion: 1 },
          { op: 'updateUser', scimId: 'u-missing', changes: { active: false } },
          { op: 'updateGroup', scimId: 'g-missing', changes: { displayName: 'x' } },
        ] as const) {
          const g = newGroup();
          const err = await t.store
            .commit([
              { op: 'insertGroup', record: g },
              { op: 'addMembership', groupScimId: g.scimId, userScimId: u.scimId },
              { op: 'updateUser', scimId: u.scimId, changes: { externalId: 'e2' } },
              stale,
              { op: 'appendAudit', entry: auditEntry({ resourceId: u.scimId }) },
            ])
            .then(
              () => null,
              (e: unknown) => e,
            );
          expect(err).toBeInstanceOf(StoreStaleError);
          expect((err as StoreStaleError).scimId).toBe(stale.scimId);
          expect(await t.store.getGroup(g.scimId)).toBeNull();
        }
        expect(await t.store.getUser(u.scimId)).toMatchObject({ externalId: 'e1', version: 2 });
        expect(await t.store.groupsOfUser(u.scimId)).toEqual([]);
        expect(await t.store.listAudit({ limit: 10 })).toEqual([]);
      });

      it('settles concurrent units each on its own: a failing one takes none of the others with it', async () => {
        const u = await t.store.insertUser(newUser());
        const peer = await t.peer();
        try {
          const units = Array.from({ length: 12 }, (_, i) => {
            const store = i % 2 === 0 ? t.store : peer.store;
            if (i % 4 === 3) {
              // Stale: every one of these expects a version the user is not at.
              return store.commit([
                { op: 'insertGroup', record: newGroup() },
                { op: 'updateUser', scimId: u.scimId, changes: {}, expectedVersion: 99 },
              ]);
            }
            return store.commit([
              { op: 'insertGroup', record: newGroup() },
              { op: 'appendAudit', entry: auditEntry({ resourceId: `r-${i}` }) },
            ]);
          });
          const settled = await Promise.allSettled(units);
          settled.forEach((s, i) => {
            if (i % 4 === 3) {
              expect(s.status).toBe('rejected');
              expect((s as PromiseRejectedResult).reason).toBeInstanceOf(StoreStaleError);
            } else expect(s.status, `unit ${i}`).toBe('fulfilled');
          });
          expect(await t.store.listAudit({ limit: 100 })).toHaveLength(9);
          expect((await t.store.directoryCounts()).groups).toBe(9);
        } finally {
          await peer.close();
        }
      });

      it('puts and clears intents with the change they belong to', async () => {
        const u = await t.store.insertUser(newUser());
        const first = await t.store.commit([{ op: 'putIntent', intent: intent(`user:${u.scimId}`) }]);
        const [pending] = [...first.intents.values()];
        expect(pending).toMatchObject({ resource: `user:${u.scimId}`, attempts: 0, payload: { n: 1 } });
        await t.store.commit([
          { op: 'updateUser', scimId: u.scimId, changes: { active: false }, expectedVersion: u.version },
          { op: 'clearIntent', id: pending.id },
          { op: 'appendAudit', entry: auditEntry({ resourceId: u.scimId }) },
        ]);
        expect(await t.store.intentsOf(`user:${u.scimId}`)).toEqual([]);
        expect((await t.store.getUser(u.scimId))?.active).toBe(false);
        expect(await t.store.listAudit({ resource: u.scimId, limit: 10 })).toHaveLength(1);
      });
    });

    describe('audit trail', () => {
      it('finds a record by its resource id or name, and by any of its subjects (case-insensitively)', async () => {
        await t.store.appendAudit(
          auditEntry({
            resourceType: 'Group',
            resourceId: 'g-1',
            resourceName: 'Finance-Admins',
            subjects: ['u-1', 'Alice@Example.com', 'u-2', 'bob@example.com', 'u-1', 'G-1', ''],
          }),
        );
        await t.store.appendAudit(auditEntry({ resourceId: 'u-1', resourceName: 'alice@example.com' }));
        await t.store.appendAudit(auditEntry({ resourceId: 'u-3', resourceName: 'carol@example.com' }));
        const ids = async (resource: string) =>
          (await t.store.listAudit({ resource, limit: 10 })).map((r) => r.resourceId);
        expect(await ids('u-1')).toEqual(['u-1', 'g-1']);
        expect(await ids('ALICE@example.com')).toEqual(['u-1', 'g-1']);
        expect(await ids('bob@example.com')).toEqual(['g-1']);
        expect(await ids('finance-admins')).toEqual(['g-1']);
        expect(await ids('g-1')).toEqual(['g-1']);
        expect(await ids('u-3')).toEqual(['u-3']);
        expect(await ids('u-9')).toEqual([]);
        // Pruning removes a record with its subjects.
        expect(await t.store.pruneAudit(new Date(Date.now() + 60_000).toISOString(), 1)).toBe(1);
        expect(await ids('bob@example.com')).toEqual([]);
        expect(await ids('u-1')).toEqual(['u-1']);
      });

      it("replaces a request's start record and its subjects with the final record, and only that request's", async () => {
        const started = (requestId: string, subject: string) =>
          auditEntry({ requestId, status: 102, resourceId: 'u-1', subjects: [subject] });
        await t.store.commit([
          { op: 'appendAudit', entry: started('req-a', 'g-start'), replacesStart: false },
        ]);
        await t.store.commit([
          { op: 'appendAudit', entry: started('req-b', 'g-other'), replacesStart: false },
        ]);
        // A finished record of req-a (not a start) stays too.
        await t.store.appendAudit(auditEntry({ requestId: 'req-a', status: 409, resourceId: 'u-1' }));
        await t.store.commit([
          {
            op: 'appendAudit',
            entry: auditEntry({ requestId: 'req-a', status: 201, resourceId: 'u-1', subjects: ['g-final'] }),
            replacesStart: true,
          },
        ]);
        const records = (q: { resource: string }) =>
          t.store.listAudit({ ...q, limit: 10 }).then((rs) => rs.map((r) => `${r.requestId} ${r.status}`));
        expect(await records({ resource: 'u-1' })).toEqual(['req-a 201', 'req-a 409', 'req-b 102']);
        expect(await records({ resource: 'g-start' })).toEqual([]);
        expect(await records({ resource: 'g-other' })).toEqual(['req-b 102']);
        expect(await records({ resource: 'g-final' })).toEqual(['req-a 201']);
      });

      it('bounds every text field of a record, marking what was cut', async () => {
        const huge = 'x'.repeat(1_040_000);
        await t.store.appendAudit(
          auditEntry({
            actor: huge,
            clientIp: huge,
            requestId: huge,
            method: huge,
            resourceId: huge,
            resourceName: `${'ü'.repeat(70)}${huge}`,
            scimType: huge,
            detail: huge,
            changes: {
              attributes: [huge, huge],
              fields: { userName: { from: 'a', to: huge } },
              members: {
                added: Array.from({ length: 20_000 }, (_, i) => `member-${i}-${'m'.repeat(40)}`),
                removed: [],
              },
              note: huge,
            },
            upstream: Array.from({ length: 5_000 }, (_, i) => ({
              action: huge,
              requestId: `r${i}`,
              outcome: 'ok',
            })),
            subjects: Array.from({ length: 10_000 }, (_, i) => `s-${i}-${huge.slice(0, 1000)}`),
          }),
        );
        const [r] = await t.store.listAudit({ limit: 1 });
        expect(JSON.stringify(r).length).toBeLessThan(400_000);
        expect(r.resourceName).toBe(`${'ü'.repeat(64)}…(1040070 characters)`);
        for (const v of [r.actor, r.clientIp, r.requestId, r.method, r.resourceId, r.scimType, r.detail]) {
          expect(v!.length).toBeLessThanOrEqual(2_100);
          expect(v).toMatch(/…\(1040000 characters\)$/);
        }
        expect(r.changes.attributes![0]).toMatch(/…\(1040000 characters\)$/);
        expect(r.changes.members!.added.length).toBeGreaterThan(100);
        expect(r.changes.members!.added.length).toBeLessThan(20_000);
        expect(r.changes.members!.added[0]).toBe(`member-0-${'m'.repeat(40)}`);
        expect(r.changes.note).toMatch(/lists cut: \d+ entries not kept/);
        expect(r.upstream.length).toBeLessThanOrEqual(200);
        expect(r.upstream.at(-1)).toEqual({ action: '…', outcome: `${5_000 - 199} more calls not listed` });
        // The record is still found by its (cut) name.
        expect(await t.store.listAudit({ resource: r.resourceName!, limit: 1 })).toHaveLength(1);
      });
    });

    describe('leader status', () => {
      it('keeps the last status published for a role, readable by every replica, with its age', async () => {
        const role = `role-${nextId()}`;
        expect(await t.store.leaderStatus(role)).toBeNull();
        await t.store.publishLeaderStatus(role, 'host-a#1', { lastRunAt: 'first', counts: { settled: 1 } });
        await t.store.publishLeaderStatus(role, 'host-b#2', { lastRunAt: 'second', counts: { settled: 2 } });
        const peer = await t.peer();
        try {
          const seen = await peer.store.leaderStatus(role);
          expect(seen).toMatchObject({
            role,
            replica: 'host-b#2',
            status: { lastRunAt: 'second', counts: { settled: 2 } },
          });
          expect(seen!.publishedAt).toMatch(ISO_MS_UTC);
          expect(seen!.ageMs).toBeGreaterThanOrEqual(0);
          // Another role is another row.
          expect(await peer.store.leaderStatus(`${role}-other`)).toBeNull();
        } finally {
          await peer.close();
        }
      });
    });

    options.extra?.(() => t);
  });
}

export function auditEntry(over: Partial<AuditEntry> = {}): AuditEntry {
  return {
    at: new Date().toISOString(),
    actor: 'okta',
    clientIp: '10.0.0.1',
    requestId: `req-${nextId()}`,
    method: 'PATCH',
    resourceType: 'User',
    resourceId: null,
    resourceName: null,
    status: 200,
    scimType: null,
    detail: null,
    durationMs: 12.5,
    changes: { attributes: ['active'] },
    upstream: [{ action: 'UpdateUser', requestId: 'up-1', outcome: 'ok' }],
    ...over,
  };
}
