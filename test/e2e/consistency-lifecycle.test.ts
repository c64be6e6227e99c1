// Issue 11, findings 1–3: deprovisioning under races and partial failure (DEACTIVATE_ACTION=delete).
// Faults at probability 1; interleavings made exact by holding one CloudIdentity call (ApiGate)
// and waiting until the racing request is queued on the user's lock.
import { afterEach, describe, expect, it } from 'vitest';
import { ApiGate, waitUntil } from '../helpers/api-gate.js';
import { type Harness, startHarness, storeKinds } from '../helpers/harness.js';
import {
  createGroup,
  createUser,
  expectInvariants,
  fire,
  memberPatch,
  setActive,
} from './consistency-support.js';
import { uniqueName } from './users-support.js';

const kinds = await storeKinds();

describe.each(kinds)('consistency: deactivate, reactivate, delete (%s store)', (store) => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('finding 1: a DELETE racing a reactivation waits for it, then deletes the re-created account', async () => {
    const gate = new ApiGate();
    h = await startHarness({ store, wrapApi: (api) => gate.wrap(api) });
    const userName = uniqueName('race');
    const id = await createUser(h, userName);
    expect((await setActive(h, id, false)).status).toBe(200);
    // CreateUser commits upstream; its answer is held while the DELETE arrives.
    const held = gate.hold('createUser', 'after');
    const reactivation = fire(setActive(h, id, true));
    await held.reached;
    const deletion = fire(h.http.delete(`/scim/v2/Users/${id}`));
    await waitUntil(() => h!.locks.waiting(`user:${id}`) === 1, 'the DELETE queued behind the reactivation');
    held.release();
    expect((await reactivation).status).toBe(200);
    expect((await deletion).status).toBe(204);
    expect((await h.http.get(`/scim/v2/Users/${id}`)).status).toBe(404);
    await expectInvariants(h, [{ id, userName }]);
    expect((await h.upstream()).users.filter((u) => u.UserName === userName)).toEqual([]);
    expect(h.locks.size, 'no lock left behind').toBe(0);
  });

  it('finding 2: a reactivation whose AddUserToGroup fails leaves one active resource, retried later; DELETE removes its account', async () => {
    h = await startHarness({ store });
    const userName = uniqueName('half');
    const id = await createUser(h, userName);
    const groupId = await createGroup(h, uniqueName('half-group', 'g'));
    expect((await memberPatch(h, groupId, 'add', id)).status).toBe(204);
    expect((await setActive(h, id, false)).status).toBe(200);

    h.emulator.setFaults([{ action: 'AddUserToGroup', probability: 1, fault: 'InternalError' }]);
    const failed = await setActive(h, id, true);
    h.emulator.setFaults([]);
    expect(failed.status, failed.text).toBeGreaterThanOrEqual(500);
    // The account exists again: the user reads active:true, one resource, not yet in the group.
    const read = await h.http.get(`/scim/v2/Users/${id}`);
    expect(read.body.active).toBe(true);
    expect(read.body.groups ?? []).toEqual([]);
    await expectInvariants(h, [{ id, userName }], [groupId]);
    // The membership still to restore is kept on the record.
    expect((await h.store.getUser(id))?.tombstoneGroupIds).toEqual([groupId]);

    // The IdP's retry finishes the reactivation.
    const retried = await setActive(h, id, true);
    expect(retried.status, retried.text).toBe(200);
    expect(retried.body.groups.map((g: { value: string }) => g.value)).toEqual([groupId]);
    expect((await h.store.getUser(id))?.tombstoneGroupIds).toEqual([]);
    await expectInvariants(h, [{ id, userName }], [groupId]);

    // Fail again, then DELETE: the account made by the failed reactivation goes too.
    expect((await setActive(h, id, false)).status).toBe(200);
    h.emulator.setFaults([{ action: 'AddUserToGroup', probability: 1, fault: 'InternalError' }]);
    expect((await setActive(h, id, true)).status).toBeGreaterThanOrEqual(500);
    h.emulator.setFaults([]);
    expect((await h.http.delete(`/scim/v2/Users/${id}`)).status).toBe(204);
    await expectInvariants(h, [{ id, userName }], [groupId]);
    expect((await h.upstream()).users.filter((u) => u.UserName === userName)).toEqual([]);
  });

  it('finding 3: a failed DeleteUser leaves the user active (5xx), and a retry deactivates it', async () => {
    h = await startHarness({ store });
    const userName = uniqueName('undead');
    const id = await createUser(h, userName);
    const groupId = await createGroup(h, uniqueName('undead-group', 'g'), [id]);

    h.emulator.setFaults([{ action: 'DeleteUser', probability: 1, fault: 'InternalError' }]);
    const failed = await setActive(h, id, false);
    h.emulator.setFaults([]);
    expect(failed.status, failed.text).toBeGreaterThanOrEqual(500);
    const read = await h.http.get(`/scim/v2/Users/${id}`);
    expect(read.body.active, 'the account still works, so the user reads active').toBe(true);
    expect((await h.upstream()).users.filter((u) => u.UserName === userName)).toHaveLength(1);
    await expectInvariants(h, [{ id, userName }], [groupId]);

    const retried = await setActive(h, id, false);
    expect(retried.status, retried.text).toBe(200);
    expect(retried.body.active).toBe(false);
    await expectInvariants(h, [{ id, userName }], [groupId]);
    // The membership is kept as intent and comes back on reactivation.
    expect((await setActive(h, id, true)).status).toBe(200);
    await expectInvariants(h, [{ id, userName }], [groupId]);
    expect((await h.upstream()).memberships.filter((m) => m.GroupId === groupId)).toHaveLength(1);
  });
});
