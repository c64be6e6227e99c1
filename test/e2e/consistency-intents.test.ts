// Issue 11, part 2: durable intents. For each multi-step operation, a failure after its first
// upstream step (an emulator fault at probability 1, or the store failing the write that follows a
// committed upstream call) → the request answers 5xx, its intent stays, and reads tell the truth
// meanwhile; then the fault is cleared and the reconciler (runOnce) settles it → I1–I5 hold.
import { afterEach, describe, expect, it } from 'vitest';
import { IntentKind } from '../../src/directory/intents.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import type { BridgeStore, StoreWrite } from '../../src/store/types.js';
import { type Harness, startHarness, storeKinds } from '../helpers/harness.js';
import { createGroup, createUser, expectInvariants, memberPatch, setActive } from './consistency-support.js';
import { filterUrl, patchBody, uniqueName } from './users-support.js';

const kinds = await storeKinds();

/**
 * A store whose next write of `method` matching `when` fails as if the database went away: a unit of
 * work (commit) holding such a write fails whole, and so does a direct call of that method.
 */
class FailingStore {
  private armed: { method: string; when: (args: unknown[]) => boolean } | undefined;

  failNext(method: StoreWrite['op'], when: (args: unknown[]) => boolean = () => true): void {
    this.armed = { method, when };
  }

  /** A unit's write as the arguments of the store method of the same name. */
  private static args(w: StoreWrite): unknown[] {
    switch (w.op) {
      case 'updateUser':
      case 'updateGroup':
        return [w.scimId, w.changes, w.expectedVersion];
      case 'deleteUser':
      case 'deleteGroup':
        return [w.scimId];
      default:
        return [w];
    }
  }

  wrap(store: BridgeStore): BridgeStore {
    return new Proxy(store, {
      get: (target, prop) => {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          const armed = this.armed;
          const hit =
            armed &&
            (prop === 'commit'
              ? (args[0] as StoreWrite[]).some(
                  (w) => w.op === armed.method && armed.when(FailingStore.args(w)),
                )
              : armed.method === prop && armed.when(args));
          if (hit) {
            this.armed = undefined;
            return Promise.reject(new StoreUnavailableError('injected by the test'));
          }
          return value.apply(target, args);
        };
      },
    });
  }
}

const accounts = async (h: Harness, userName: string) =>
  (await h.upstream()).users.filter((u) => u.UserName.toLowerCase() === userName.toLowerCase());

async function pendingKinds(h: Harness): Promise<string[]> {
  await h.reconciler.refresh();
  return h.reconciler.report().intents.map((i) => i.kind);
}

describe.each(kinds)('durable intents (%s store)', (store) => {
  let h: Harness | undefined;
  const failing = new FailingStore();
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const start = () => startHarness({ store, wrapStore: (s) => failing.wrap(s) });

  it('deactivate, DeleteUser failing: 5xx, intent kept, reads active:true; the reconciler deactivates', async () => {
    h = await start();
    const userName = uniqueName('int-deact');
    const id = await createUser(h, userName);
    const groupId = await createGroup(h, uniqueName('int-deact-g', 'g'), [id]);
    h.emulator.setFaults([{ action: 'DeleteUser', probability: 1, fault: 'InternalError' }]);
    expect((await setActive(h, id, false)).status).toBeGreaterThanOrEqual(500);
    expect(await pendingKinds(h)).toEqual([IntentKind.deactivate]);
    expect((await h.http.get(`/scim/v2/Users/${id}`)).body.active).toBe(true);
    expect(await accounts(h, userName)).toHaveLength(1);
    await expectInvariants(h, [{ id, userName }], [groupId]);
    // Still failing: the reconciler keeps the intent and records the attempt.
    expect((await h.reconciler.runOnce()).failed).toBe(1);
    const [kept] = h.reconciler.report().intents;
    expect(kept.attempts).toBe(1);
    expect(kept.lastError).toContain('InternalError');
    h.emulator.setFaults([]);
    await h.settle();
    expect(await accounts(h, userName)).toEqual([]);
    const read = await h.http.get(`/scim/v2/Users/${id}`);
    expect(read.body.active).toBe(false);
    await expectInvariants(h, [{ id, userName }], [groupId]);
    // The membership survives as intent to restore.
    expect((await setActive(h, id, true)).status).toBe(200);
    await expectInvariants(h, [{ id, userName }], [groupId]);
    expect((await h.upstream()).memberships.filter((m) => m.GroupId === groupId)).toHaveLength(1);
  });

  it('deactivate, the tombstone write failing after DeleteUser committed: reads active:false, one resource', async () => {
    h = await start();
    const userName = uniqueName('int-tomb');
    const id = await createUser(h, userName);
    failing.failNext('updateUser', (args) => (args[1] as { active?: boolean }).active === false);
    expect((await setActive(h, id, false)).status).toBeGreaterThanOrEqual(500);
    expect(await pendingKinds(h)).toEqual([IntentKind.deactivate]);
    expect(await accounts(h, userName)).toEqual([]);
    const read = await h.http.get(`/scim/v2/Users/${id}`);
    expect(read.status, 'not a 404 while the deactivation is pending').toBe(200);
    expect(read.body.active, 'the account is gone').toBe(false);
    const found = await h.http.get(filterUrl(`userName eq "${userName}"`));
    expect(found.body.totalResults).toBe(1);
    expect(found.body.Resources[0].active).toBe(false);
    await h.settle();
    expect((await h.store.getUser(id))?.upstreamUserId).toBeNull();
    await expectInvariants(h, [{ id, userName }]);
  });

  it('reactivate, AddUserToGroup failing after CreateUser: one active resource, the reconciler restores the membership', async () => {
    h = await start();
    const userName = uniqueName('int-react');
    const id = await createUser(h, userName);
    const groupId = await createGroup(h, uniqueName('int-react-g', 'g'), [id]);
    expect((await setActive(h, id, false)).status).toBe(200);
    h.emulator.setFaults([{ action: 'AddUserToGroup', probability: 1, fault: 'InternalError' }]);
    expect((await setActive(h, id, true)).status).toBeGreaterThanOrEqual(500);
    expect(await pendingKinds(h)).toEqual([IntentKind.reactivate]);
    expect((await h.http.get(`/scim/v2/Users/${id}`)).body.active).toBe(true);
    await expectInvariants(h, [{ id, userName }], [groupId]);
    h.emulator.setFaults([]);
    await h.settle();
    const read = await h.http.get(`/scim/v2/Users/${id}`);
    expect(read.body.groups.map((g: { value: string }) => g.value)).toEqual([groupId]);
    await expectInvariants(h, [{ id, userName }], [groupId]);
  });

  it('reactivate, the mapping write failing after CreateUser: the new account reads as this user (one resource), then is mapped', async () => {
    h = await start();
    const userName = uniqueName('int-map');
    const id = await createUser(h, userName);
    expect((await setActive(h, id, false)).status).toBe(200);
    failing.failNext(
      'updateUser',
      (args) => typeof (args[1] as { upstreamUserId?: unknown }).upstreamUserId === 'string',
    );
    expect((await setActive(h, id, true)).status).toBeGreaterThanOrEqual(500);
    expect(await pendingKinds(h)).toEqual([IntentKind.reactivate]);
    expect(await accounts(h, userName)).toHaveLength(1);
    const read = await h.http.get(`/scim/v2/Users/${id}`);
    expect(read.body.active, 'the account exists again').toBe(true);
    const found = await h.http.get(filterUrl(`userName eq "${userName}"`));
    expect(found.body.totalResults, found.text).toBe(1);
    expect(found.body.Resources[0].id).toBe(id);
    await h.settle();
    expect((await h.store.getUser(id))?.upstreamUserId).toBe((await accounts(h, userName))[0].UserId);
    await expectInvariants(h, [{ id, userName }]);
  });

  it('delete, the record delete failing after DeleteUser: 404 meanwhile; the reconciler removes the record', async () => {
    h = await start();
    const userName = uniqueName('int-del');
    const id = await createUser(h, userName);
    const groupId = await createGroup(h, uniqueName('int-del-g', 'g'), [id]);
    failing.failNext('deleteUser');
    expect((await h.http.delete(`/scim/v2/Users/${id}`)).status).toBeGreaterThanOrEqual(500);
    expect(await pendingKinds(h)).toEqual([IntentKind.delete]);
    expect(await accounts(h, userName)).toEqual([]);
    expect((await h.http.get(`/scim/v2/Users/${id}`)).status).toBe(404);
    await h.settle();
    expect(await h.store.getUser(id)).toBeNull();
    expect(await h.store.groupsOfUser(id)).toEqual([]);
    await expectInvariants(h, [{ id, userName }], [groupId]);
  });

  it('delete, DeleteUser failing: the user stays readable and active; the reconciler deletes it', async () => {
    h = await start();
    const userName = uniqueName('int-del2');
    const id = await createUser(h, userName);
    h.emulator.setFaults([{ action: 'DeleteUser', probability: 1, fault: 'ServiceUnavailableTemp' }]);
    expect((await h.http.delete(`/scim/v2/Users/${id}`)).status).toBeGreaterThanOrEqual(500);
    expect((await h.http.get(`/scim/v2/Users/${id}`)).body.active).toBe(true);
    h.emulator.setFaults([]);
    await h.settle();
    expect((await h.http.get(`/scim/v2/Users/${id}`)).status).toBe(404);
    await expectInvariants(h, [{ id, userName }]);
  });

  it('group members, AddUserToGroup failing after a RemoveUserFromGroup: members read as CloudIdentity has them; the reconciler finishes', async () => {
    h = await start();
    const a = { userName: uniqueName('int-ma'), id: '' };
    const b = { userName: uniqueName('int-mb'), id: '' };
    a.id = await createUser(h, a.userName);
    b.id = await createUser(h, b.userName);
    const groupId = await createGroup(h, uniqueName('int-m-g', 'g'), [a.id]);
    h.emulator.setFaults([{ action: 'AddUserToGroup', probability: 1, fault: 'InternalError' }]);
    const res = await h.http
      .patch(`/scim/v2/Groups/${groupId}`)
      .send(
        patchBody(
          { op: 'remove', path: `members[value eq "${a.id}"]` },
          { op: 'add', path: 'members', value: [{ value: b.id }] },
        ),
      );
    expect(res.status, res.text).toBeGreaterThanOrEqual(500);
    expect(await pendingKinds(h)).toEqual([IntentKind.members]);
    await expectInvariants(h, [a, b], [groupId]);
    h.emulator.setFaults([]);
    await h.settle();
    const group = await h.http.get(`/scim/v2/Groups/${groupId}`);
    expect(group.body.members.map((m: { value: string }) => m.value)).toEqual([b.id]);
    await expectInvariants(h, [a, b], [groupId]);
  });

  it('group members: the next request on the group settles a pending change before its own', async () => {
    h = await start();
    const a = { userName: uniqueName('int-na'), id: '' };
    a.id = await createUser(h, a.userName);
    const groupId = await createGroup(h, uniqueName('int-n-g', 'g'));
    h.emulator.setFaults([{ action: 'AddUserToGroup', probability: 1, fault: 'InternalError' }]);
    expect((await memberPatch(h, groupId, 'add', a.id)).status).toBeGreaterThanOrEqual(500);
    h.emulator.setFaults([]);
    // The IdP's next change (a remove) comes after the add it asked for first: the user ends outside.
    expect((await memberPatch(h, groupId, 'remove', a.id)).status).toBe(204);
    expect(await pendingKinds(h)).toEqual([]);
    expect((await h.upstream()).memberships.filter((m) => m.GroupId === groupId)).toEqual([]);
    await expectInvariants(h, [a], [groupId]);
  });

  it('group delete, DeleteGroup failing: the group stays readable; the reconciler deletes it and its mirror', async () => {
    h = await start();
    const a = { userName: uniqueName('int-gd'), id: '' };
    a.id = await createUser(h, a.userName);
    const groupId = await createGroup(h, uniqueName('int-gd-g', 'g'), [a.id]);
    h.emulator.setFaults([{ action: 'DeleteGroup', probability: 1, fault: 'InternalError' }]);
    expect((await h.http.delete(`/scim/v2/Groups/${groupId}`)).status).toBeGreaterThanOrEqual(500);
    expect(await pendingKinds(h)).toEqual([IntentKind.groupDelete]);
    expect((await h.http.get(`/scim/v2/Groups/${groupId}`)).status).toBe(200);
    h.emulator.setFaults([]);
    await h.settle();
    expect((await h.http.get(`/scim/v2/Groups/${groupId}`)).status).toBe(404);
    expect(await h.store.getGroup(groupId)).toBeNull();
    expect(await h.store.groupsOfUser(a.id)).toEqual([]);
    await expectInvariants(h, [a]);
  });

  it('a member replace leaving out a deactivated member drops it: reactivation does not bring it back', async () => {
    h = await start();
    const a = { userName: uniqueName('int-rep-a'), id: '' };
    const b = { userName: uniqueName('int-rep-b'), id: '' };
    a.id = await createUser(h, a.userName);
    b.id = await createUser(h, b.userName);
    const groupId = await createGroup(h, uniqueName('int-rep-g', 'g'), [a.id, b.id]);
    expect((await setActive(h, a.id, false)).status).toBe(200);
    const replaced = await h.http
      .patch(`/scim/v2/Groups/${groupId}`)
      .send(patchBody({ op: 'replace', path: 'members', value: [{ value: b.id }] }));
    expect(replaced.status, replaced.text).toBeLessThan(300);
    expect((await h.store.getUser(a.id))?.tombstoneGroupIds).toEqual([]);
    expect((await setActive(h, a.id, true)).status).toBe(200);
    const group = await h.http.get(`/scim/v2/Groups/${groupId}`);
    expect(group.body.members.map((m: { value: string }) => m.value)).toEqual([b.id]);
    await expectInvariants(h, [a, b], [groupId]);
  });

  it('a 4xx leaves no intent and changes nothing (I6)', async () => {
    h = await start();
    const a = { userName: uniqueName('int-4xx'), id: '' };
    a.id = await createUser(h, a.userName);
    const groupId = await createGroup(h, uniqueName('int-4xx-g', 'g'));
    const before = await h.upstream();
    const bad = await h.http
      .patch(`/scim/v2/Groups/${groupId}`)
      .send(patchBody({ op: 'add', path: 'members', value: [{ value: 'no-such-user' }] }));
    expect(bad.status).toBe(400);
    const stale = await h.http
      .patch(`/scim/v2/Users/${a.id}`)
      .set('If-Match', 'W/"999"')
      .send(patchBody({ op: 'replace', path: 'active', value: false }));
    expect(stale.status).toBe(412);
    expect(await h.store.countIntents()).toBe(0);
    const after = await h.upstream();
    expect(after.users).toEqual(before.users);
    expect(after.memberships).toEqual(before.memberships);
  });
});
