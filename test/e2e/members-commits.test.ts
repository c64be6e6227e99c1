// What a group membership change costs the store, through HTTP on both stores: a change of up to one
// batch of members (the group parallelism, 8) is two commits (its intent with the start record; the
// mirror rows with the intent's clearing and the audit record), a longer one one more per further
// batch. And what a change cut off part-way leaves: the intent, whose replay (the reconciler) brings
// the mirror in step with CloudIdentity and records what it finished.
import { afterEach, describe, expect, it } from 'vitest';
import { IntentKind } from '../../src/directory/intents.js';
import type { AuditRecord } from '../../src/store/audit-types.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import type { BridgeStore, StoreWrite } from '../../src/store/types.js';
import { type Harness, startHarness, storeKinds } from '../helpers/harness.js';
import { createGroup, createUser, expectInvariants } from './consistency-support.js';
import { patchBody, uniqueName } from './users-support.js';

const kinds = await storeKinds();
const ADMIN = 'admin-token-for-member-commits-0123';

/** Counts the store's commits, and fails the next one whose writes match, as a database gone at COMMIT. */
class CommitWatch {
  count = 0;
  private armed: ((writes: readonly StoreWrite[]) => boolean) | undefined;
  private times = 0;
  /** Fails the next `times` commits whose writes match `when`. */
  failNext(when: (writes: readonly StoreWrite[]) => boolean, times = 1): void {
    this.armed = when;
    this.times = times;
  }
  wrap(store: BridgeStore): BridgeStore {
    return new Proxy(store, {
      get: (target, prop) => {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (prop !== 'commit') return value.bind(target);
        return (writes: readonly StoreWrite[]) => {
          this.count++;
          if (this.armed?.(writes)) {
            if (--this.times === 0) this.armed = undefined;
            return Promise.reject(new StoreUnavailableError('injected by the test'));
          }
          return value.call(target, writes);
        };
      },
    });
  }
}

describe.each(kinds)('group membership commits (%s store)', (store) => {
  let h: Harness | undefined;
  const watch = new CommitWatch();
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const start = async () => {
    h = await startHarness({ store, env: { ADMIN_TOKENS: ADMIN }, wrapStore: (s) => watch.wrap(s) });
    return h;
  };
  const users = async (n: number, prefix: string) => {
    const out: Array<{ id: string; userName: string }> = [];
    for (let i = 0; i < n; i++) {
      const userName = uniqueName(`${prefix}${i}`);
      out.push({ id: await createUser(h!, userName), userName });
    }
    return out;
  };
  /** Commits made while `req` ran (the reconciler is not started: nothing else commits). */
  const commitsOf = async <T>(req: PromiseLike<T>): Promise<{ res: T; commits: number }> => {
    const before = watch.count;
    const res = await req;
    return { res, commits: watch.count - before };
  };
  const patch = (groupId: string, ops: Array<Record<string, unknown>>) =>
    h!.http.patch(`/scim/v2/Groups/${groupId}`).send(patchBody(...ops));
  const values = (ids: Array<{ id: string }>) => ids.map((u) => ({ value: u.id }));
  const upstreamMembers = async (groupId: string) =>
    (await h!.upstream()).memberships
      .filter((m) => m.GroupId === groupId)
      .map((m) => m.UserId)
      .sort();
  const mirror = async (groupId: string) => (await h!.store.membersOfGroup(groupId)).sort();
  const pending = async (groupId: string) =>
    (await h!.store.intentsOf(`group:${groupId}`)).map((i) => i.kind);

  it('one member added or removed is two commits; up to a batch of members too; each further batch one more', async () => {
    await start();
    const [one, ...more] = await users(21, 'mc-');
    const groupId = await createGroup(h!, uniqueName('mc-g', 'g'));

    const add = await commitsOf(patch(groupId, [{ op: 'add', path: 'members', value: values([one]) }]));
    expect(add.res.status, add.res.text).toBe(204);
    expect(add.commits).toBe(2);
    const remove = await commitsOf(patch(groupId, [{ op: 'remove', path: `members[value eq "${one.id}"]` }]));
    expect(remove.res.status, remove.res.text).toBe(204);
    expect(remove.commits).toBe(2);

    const eight = await commitsOf(
      patch(groupId, [{ op: 'add', path: 'members', value: values(more.slice(0, 8)) }]),
    );
    expect(eight.res.status, eight.res.text).toBe(204);
    expect(eight.commits).toBe(2);
    // 8 removals and 12 additions: batches of 8, 8 and 4 → the intent, two batches, the final unit.
    const twenty = await commitsOf(
      patch(groupId, [
        { op: 'remove', path: 'members', value: values(more.slice(0, 8)) },
        { op: 'add', path: 'members', value: values([one, ...more.slice(8)]) },
      ]),
    );
    expect(twenty.res.status, twenty.res.text).toBe(204);
    expect(twenty.commits).toBe(4);

    const expected = [one, ...more.slice(8)].map((u) => u.id).sort();
    expect(await mirror(groupId)).toEqual(expected);
    const byUserId = new Map<string, string>();
    for (const u of [one, ...more]) byUserId.set((await h!.store.getUser(u.id))!.upstreamUserId!, u.id);
    expect((await upstreamMembers(groupId)).map((id) => byUserId.get(id)).sort()).toEqual(expected);
    expect(await pending(groupId)).toEqual([]);
    // The one record of the 20-member change names every member it added and removed.
    const res = await h!.http
      .get(`/admin/api/audit?resource=${groupId}&limit=50`)
      .set('Authorization', `Bearer ${ADMIN}`);
    const last = (res.body.records as AuditRecord[]).find(
      (r) => r.status === 204 && r.changes.members?.added?.length === 13,
    );
    expect(last?.changes.members?.removed).toHaveLength(8);
    await expectInvariants(h!, [one, ...more], [groupId]);
  });

  it('a change cut off before its last commit leaves its intent; the replay writes the rows it lacked and records them', async () => {
    await start();
    const members = await users(12, 'mf-');
    const groupId = await createGroup(h!, uniqueName('mf-g', 'g'));
    // Every commit of the last batch's rows fails (the final unit, then the rows on their own): the
    // first batch (8) is committed, the last (4) is added upstream without its mirror rows, as if
    // the process had died before its last COMMIT.
    watch.failNext((writes) => writes.filter((w) => w.op === 'addMembership').length === 4, 2);
    const cut = await patch(groupId, [{ op: 'add', path: 'members', value: values(members) }]);
    expect(cut.status, cut.text).toBe(503);
    expect(await pending(groupId)).toEqual([IntentKind.members]);
    expect(await upstreamMembers(groupId)).toHaveLength(12);
    expect(await mirror(groupId)).toHaveLength(8);

    await h!.settle();
    expect(await pending(groupId)).toEqual([]);
    expect(await mirror(groupId)).toEqual(members.map((u) => u.id).sort());
    await expectInvariants(h!, members, [groupId]);
    const res = await h!.http
      .get(`/admin/api/audit?resource=${groupId}&limit=50`)
      .set('Authorization', `Bearer ${ADMIN}`);
    const settled = (res.body.records as AuditRecord[]).find(
      (r) => r.method === `settle ${IntentKind.members}`,
    );
    expect(settled?.actor).toBe('reconciler');
    expect(settled?.changes.members?.added.map((m) => (typeof m === 'string' ? m : m.id)).sort()).toEqual(
      members.map((u) => u.id).sort(),
    );
  });

  it('a final commit that fails keeps the mirror rows of what changed upstream; the intent settles the rest', async () => {
    await start();
    const members = await users(3, 'mk-');
    const groupId = await createGroup(h!, uniqueName('mk-g', 'g'));
    watch.failNext((writes) => writes.some((w) => w.op === 'clearIntent'));
    const cut = await patch(groupId, [{ op: 'add', path: 'members', value: values(members) }]);
    expect(cut.status, cut.text).toBe(503);
    expect(await pending(groupId)).toEqual([IntentKind.members]);
    expect(await mirror(groupId)).toEqual(members.map((u) => u.id).sort());
    await h!.settle();
    expect(await pending(groupId)).toEqual([]);
    await expectInvariants(h!, members, [groupId]);
  });

  it('AddUserToGroup failing (probability 1) after two batches of removals: the done part is mirrored, the intent finishes the rest', async () => {
    await start();
    const members = await users(11, 'me-');
    const [newA, newB] = await users(2, 'me-new-');
    const groupId = await createGroup(
      h!,
      uniqueName('me-g', 'g'),
      members.map((u) => u.id),
    );
    h!.emulator.setFaults([{ action: 'AddUserToGroup', probability: 1, fault: 'InternalError' }]);
    // 11 removals then 2 additions: a batch of 8 removals, then 3 removals and the 2 additions.
    const cut = await patch(groupId, [
      { op: 'remove', path: 'members', value: values(members) },
      { op: 'add', path: 'members', value: values([newA, newB]) },
    ]);
    expect(cut.status).toBeGreaterThanOrEqual(500);
    expect(await pending(groupId)).toEqual([IntentKind.members]);
    // Every removal happened upstream and is mirrored; neither addition happened.
    expect(await upstreamMembers(groupId)).toEqual([]);
    expect(await mirror(groupId)).toEqual([]);

    h!.emulator.setFaults([]);
    await h!.settle();
    expect(await pending(groupId)).toEqual([]);
    expect(await mirror(groupId)).toEqual([newA.id, newB.id].sort());
    await expectInvariants(h!, [...members, newA, newB], [groupId]);
  });
});
