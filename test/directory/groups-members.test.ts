// A group's member changes below the routes: translating member ids, the delta a PATCH makes, and
// each change with its mirror row. Against the emulator over HTTP and a real store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidValueError } from '../../src/directory/errors.js';
import { GroupMembers } from '../../src/directory/groups-members.js';
import { Intents } from '../../src/directory/intents.js';
import { ResourceLocks } from '../../src/directory/resource-locks.js';
import { parseFilter } from '../../src/scim/filter.js';
import {
  openTestStore,
  type StoreKind,
  startUpstream,
  storeKinds,
  type TestStore,
  testContext,
  type Upstream,
} from '../helpers/domain.js';
import { newUser } from '../store/contract.js';

describe.each(await storeKinds())('GroupMembers (%s store)', (kind: StoreKind) => {
  let upstream: Upstream;
  let t: TestStore;
  let members: GroupMembers;
  let n = 0;

  beforeAll(async () => {
    upstream = await startUpstream();
    t = await openTestStore(kind);
    members = new GroupMembers(upstream.api, t.store, new ResourceLocks(), new Intents(t.store), 4);
  });
  afterAll(async () => {
    await upstream.close();
    await t.close();
  });

  const opts = () => ({ deadlineAt: Date.now() + 15_000 });

  /** A user the bridge created: its account and its record (SCIM id ≠ UserId). */
  async function bridgeUser() {
    const account = await upstream.api.createUser({ UserName: `gm-${kind}-${++n}@example.com` }, opts());
    const record = newUser({ userName: account.UserName, upstreamUserId: account.UserId });
    await t.store.insertUser(record);
    return { scimId: record.scimId, userId: account.UserId };
  }

  /** A deactivated user (DEACTIVATE_ACTION=delete): a ready record with no account. */
  async function tombstone() {
    const record = newUser({ upstreamUserId: null, active: false });
    await t.store.insertUser(record);
    return record.scimId;
  }

  async function group() {
    return (
      await upstream.api.createGroup({ GroupName: `gm-group-${kind}-${++n}`, JoinType: 'Manual' }, opts())
    ).GroupId;
  }

  describe('resolve', () => {
    it('maps each id to what to do: a record to its account or tombstone, a foreign UserId as itself', async () => {
      const { ctx } = testContext();
      const mine = await bridgeUser();
      const deactivated = await tombstone();
      const foreign = await upstream.api.createUser({ UserName: `gm-foreign-${kind}@example.com` }, opts());
      expect(await members.resolve([mine.scimId, deactivated, foreign.UserId], 'add', ctx)).toEqual([
        { kind: 'upstream', scimId: mine.scimId, userId: mine.userId },
        { kind: 'tombstone', scimId: deactivated },
        { kind: 'upstream', scimId: foreign.UserId, userId: foreign.UserId },
      ]);
    });

    it('a UserId a record maps is not a member id: the record names that user', async () => {
      const { ctx } = testContext();
      const mine = await bridgeUser();
      await expect(members.resolve([mine.userId], 'add', ctx)).rejects.toThrow(
        `members: '${mine.userId}' is not a User id`,
      );
      expect(await members.resolve([mine.userId], 'remove', ctx)).toEqual([
        { kind: 'absent', scimId: mine.userId },
      ]);
    });

    it('unknown ids are a 400 for an add (five named, the rest counted); a removal takes them unchecked', async () => {
      const { ctx } = testContext();
      const unknown = Array.from({ length: 7 }, (_, i) => `nobody-${i}`);
      const err = await members.resolve(unknown, 'add', ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidValueError);
      expect((err as Error).message).toBe(
        "members: 'nobody-0', 'nobody-1', 'nobody-2', 'nobody-3', 'nobody-4' and 2 more are not User ids",
      );
      // A removal takes an id without a record as a CloudIdentity UserId unchecked: removing a
      // non-member counts as done, so no GetUser is spent on it.
      const before = upstream.emulator.calls().GetUser ?? 0;
      expect(await members.resolve(['nobody-x'], 'remove', ctx)).toEqual([
        { kind: 'upstream', scimId: 'nobody-x', userId: 'nobody-x' },
      ]);
      expect(upstream.emulator.calls().GetUser ?? 0).toBe(before);
      await expect(members.resolve(['../etc/passwd'], 'remove', ctx)).rejects.toThrow("'../etc/passwd'");
    });

    it('a long list of made-up ids costs one batch of GetUser calls, not one call per id', async () => {
      const { ctx } = testContext();
      const before = upstream.emulator.calls().GetUser ?? 0;
      const unknown = Array.from({ length: 200 }, (_, i) => `made-up-${i}`);
      await expect(members.resolve(unknown, 'add', ctx)).rejects.toBeInstanceOf(InvalidValueError);
      // parallelism 4: batches of 8
      expect((upstream.emulator.calls().GetUser ?? 0) - before).toBe(8);
    });
  });

  describe('memberDelta', () => {
    it('explicit adds and removes fold into a delta (last operation on an id wins) without reading anything', async () => {
      const { ctx } = testContext();
      const before = upstream.emulator.calls().ListGroupMembers ?? 0;
      const delta = await members.memberDelta(
        'any-group',
        {
          members: [
            { kind: 'add', ids: ['a', 'b', 'c'] },
            { kind: 'remove', ids: ['b', 'd'] },
            { kind: 'add', ids: ['d'] },
          ],
        },
        ctx,
      );
      expect(delta).toEqual({ adds: ['a', 'c', 'd'], removes: ['b'] });
      expect(upstream.emulator.calls().ListGroupMembers ?? 0).toBe(before);
    });

    it('replace reads the members once and diffs; deactivated members it leaves out are dropped too', async () => {
      const { ctx } = testContext();
      const groupId = await group();
      const [stay, leave, join] = [await bridgeUser(), await bridgeUser(), await bridgeUser()];
      const [keptDeactivated, droppedDeactivated] = [await tombstone(), await tombstone()];
      for (const u of [stay, leave])
        await upstream.api.addUserToGroup({ GroupId: groupId, UserId: u.userId }, opts());
      for (const id of [keptDeactivated, droppedDeactivated]) await t.store.addMembership(groupId, id);
      const delta = await members.memberDelta(
        groupId,
        { members: [{ kind: 'replace', ids: [stay.scimId, join.scimId, keptDeactivated] }] },
        ctx,
      );
      expect(delta.adds).toEqual([join.scimId]);
      expect(delta.removes).toEqual(
        expect.arrayContaining([
          { kind: 'upstream', scimId: leave.scimId, userId: leave.userId, userName: expect.any(String) },
          { kind: 'tombstone', scimId: droppedDeactivated },
        ]),
      );
      expect(delta.removes).toHaveLength(2);
    });

    it('removeWhere and removeAll decide on the current members', async () => {
      const { ctx } = testContext();
      const groupId = await group();
      const [a, b] = [await bridgeUser(), await bridgeUser()];
      for (const u of [a, b])
        await upstream.api.addUserToGroup({ GroupId: groupId, UserId: u.userId }, opts());
      const where = `value eq "${a.scimId}"`;
      const one = await members.memberDelta(
        groupId,
        {
          members: [
            {
              kind: 'removeWhere',
              filter: parseFilter(where, ['value', 'display', 'type']),
              expression: where,
            },
          ],
        },
        ctx,
      );
      expect(one.removes.map((r) => (typeof r === 'string' ? r : r.scimId))).toEqual([a.scimId]);
      const all = await members.memberDelta(groupId, { members: [{ kind: 'removeAll' }] }, ctx);
      expect(all.removes.map((r) => (typeof r === 'string' ? r : r.scimId)).sort()).toEqual(
        [a.scimId, b.scimId].sort(),
      );
      expect(all.adds).toEqual([]);
    });
  });

  describe('changeMember', () => {
    it('an add and a removal each make the upstream call and their mirror row', async () => {
      const { ctx } = testContext();
      const groupId = await group();
      const u = await bridgeUser();
      const [resolved] = await members.resolve([u.scimId], 'add', ctx);
      await members.changeMember(groupId, resolved, 'add', ctx);
      expect(await t.store.membersOfGroup(groupId)).toEqual([u.scimId]);
      expect((await members.upstreamMembers(groupId, ctx)).map((m) => m.UserId)).toEqual([u.userId]);
      await members.changeMember(groupId, resolved, 'remove', ctx);
      expect(await t.store.membersOfGroup(groupId)).toEqual([]);
      expect(await members.upstreamMembers(groupId, ctx)).toEqual([]);
    });

    it('adding a deactivated user keeps the group in its tombstone (to restore), with its mirror row', async () => {
      const { ctx } = testContext();
      const groupId = await group();
      const id = await tombstone();
      await members.changeMember(groupId, { kind: 'tombstone', scimId: id }, 'add', ctx);
      expect((await t.store.getUser(id))?.tombstoneGroupIds).toEqual([groupId]);
      expect(await t.store.membersOfGroup(groupId)).toEqual([id]);
      await members.changeMember(groupId, { kind: 'tombstone', scimId: id }, 'remove', ctx);
      expect((await t.store.getUser(id))?.tombstoneGroupIds).toEqual([]);
      expect(await t.store.membersOfGroup(groupId)).toEqual([]);
    });

    it('an add to a group gone upstream is a 404 and leaves no mirror row', async () => {
      const { ctx } = testContext();
      const groupId = await group();
      const u = await bridgeUser();
      await upstream.api.deleteGroup({ GroupId: groupId }, opts());
      const [resolved] = await members.resolve([u.scimId], 'add', ctx);
      await expect(members.changeMember(groupId, resolved, 'add', ctx)).rejects.toThrow(
        `Group ${groupId} not found`,
      );
      expect(await t.store.membersOfGroup(groupId)).toEqual([]);
    });
  });
});
