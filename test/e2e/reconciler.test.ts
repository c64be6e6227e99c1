// The reconciler: drift it did not cause (console deletes, tombstone collisions, a membership mirror
// that disagrees with CloudIdentity), one leader across two bridges on PostgreSQL, its report at
// /admin/api/reconciler and its metrics.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/ops/metrics.js';
import { type Harness, startHarness, storeKinds } from '../helpers/harness.js';
import { createGroup, createUser, expectInvariants, setActive } from './consistency-support.js';
import { uniqueName } from './users-support.js';

const kinds = await storeKinds();
const ADMIN = 'admin-token-0123456789abcdef';

describe.each(kinds)('reconciler (%s store)', (store) => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('a console-deleted account: the record becomes a tombstone (active:false), reported and counted', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    h = await startHarness({ store, metrics, env: { ADMIN_TOKENS: ADMIN } });
    const userName = uniqueName('drift-del');
    const id = await createUser(h, userName);
    const groupId = await createGroup(h, uniqueName('drift-del-g', 'g'), [id]);
    const record = await h.store.getUser(id);
    await h.client.deleteUser({ UserId: record!.upstreamUserId! });
    const run = await h.reconciler.runOnce({ drift: true });
    expect(run.drift.map((d) => [d.kind, d.action])).toContainEqual(['accountDeletedUpstream', 'repaired']);
    const read = await h.http.get(`/scim/v2/Users/${id}`);
    expect(read.status).toBe(200);
    expect(read.body.active).toBe(false);
    await expectInvariants(h, [{ id, userName }], [groupId]);
    // The IdP's active:true re-creates the account with its membership.
    expect((await setActive(h, id, true)).status).toBe(200);
    await expectInvariants(h, [{ id, userName }], [groupId]);
    expect((await h.upstream()).memberships.filter((m) => m.GroupId === groupId)).toHaveLength(1);

    const report = await h.http.get('/admin/api/reconciler').set('Authorization', `Bearer ${ADMIN}`);
    expect(report.status).toBe(200);
    expect(report.body).toMatchObject({
      leader: true,
      pendingIntents: 0,
      intents: [],
      drift: { found: 1, repaired: 1 },
    });
    expect(report.body.drift.reported[0]).toMatchObject({
      kind: 'accountDeletedUpstream',
      resource: `user:${id}`,
    });
    expect(typeof report.body.lastRunAt).toBe('string');
    expect((await h.http.get('/admin/api/reconciler')).status, 'a SCIM token is not an admin token').toBe(
      401,
    );
    const text = (await metrics.render()).body;
    expect(text).toMatch(
      /scim_bridge_reconciler_drift_total\{kind="accountDeletedUpstream",action="repaired"\} 1/,
    );
    expect(text).toMatch(/scim_bridge_reconciler_pending_intents 0/);
  });

  it('an intent whose resource another request holds is skipped as busy, and settled once it is free', async () => {
    h = await startHarness({ store });
    const groupId = await createGroup(h, uniqueName('busy-g', 'g'));
    await h.store.putIntent({
      id: randomUUID(),
      resource: `group:${groupId}`,
      kind: 'group.delete',
      payload: { groupId },
    });
    const release = await h.locks.acquire(`group:${groupId}`);
    const busy = await h.reconciler.runOnce({ ignoreBackoff: true });
    expect(busy).toMatchObject({ settled: 0, failed: 0, skippedBusy: 1, pending: 1 });
    release();
    const free = await h.reconciler.runOnce({ ignoreBackoff: true });
    expect(free).toMatchObject({ settled: 1, failed: 0, skippedBusy: 0, pending: 0 });
    expect((await h.http.get(`/scim/v2/Groups/${groupId}`)).status).toBe(404);
  });

  it('an account colliding with a tombstone is reported, not touched', async () => {
    h = await startHarness({ store });
    const userName = uniqueName('drift-col');
    const id = await createUser(h, userName);
    expect((await setActive(h, id, false)).status).toBe(200);
    const made = await h.client.createUser({ UserName: userName, DisplayName: 'console' });
    const run = await h.reconciler.runOnce({ drift: true });
    expect(run.drift).toEqual([expect.objectContaining({ kind: 'tombstoneCollision', action: 'reported' })]);
    expect((await h.upstream()).users.some((u) => u.UserId === made.UserId)).toBe(true);
    expect((await h.store.getUser(id))?.active).toBe(false);
  });

  it('the membership mirror is repaired from CloudIdentity (a console add, a stale row), deactivated members kept', async () => {
    h = await startHarness({ store });
    const a = { userName: uniqueName('drift-ma'), id: '' };
    const b = { userName: uniqueName('drift-mb'), id: '' };
    const c = { userName: uniqueName('drift-mc'), id: '' };
    a.id = await createUser(h, a.userName);
    b.id = await createUser(h, b.userName);
    c.id = await createUser(h, c.userName);
    const groupId = await createGroup(h, uniqueName('drift-m-g', 'g'), [c.id]);
    expect((await setActive(h, c.id, false)).status).toBe(200);
    // Added in the console: the mirror does not know.
    await h.client.addUserToGroup({
      GroupId: groupId,
      UserId: (await h.store.getUser(a.id))!.upstreamUserId!,
    });
    // A stale mirror row: b is not a member upstream.
    await h.store.addMembership(groupId, b.id);
    const run = await h.reconciler.runOnce({ drift: true });
    expect(run.drift).toEqual([
      expect.objectContaining({
        kind: 'membershipMirror',
        action: 'repaired',
        detail: expect.stringMatching(/1 added, 1 removed/),
      }),
    ]);
    expect(await h.store.membersOfGroup(groupId)).toEqual([a.id, c.id].sort());
    await expectInvariants(h, [a, b], [groupId]);
    // A second pass finds nothing.
    expect((await h.reconciler.runOnce({ drift: true })).drift).toEqual([]);
  });

  it('a group deleted in the console loses its record and mirror', async () => {
    h = await startHarness({ store });
    const a = { userName: uniqueName('drift-gd'), id: '' };
    a.id = await createUser(h, a.userName);
    const groupId = await createGroup(h, uniqueName('drift-gd-g', 'g'), [a.id]);
    await h.client.removeUserFromGroup({
      GroupId: groupId,
      UserId: (await h.store.getUser(a.id))!.upstreamUserId!,
    });
    await h.client.deleteGroup({ GroupId: groupId });
    const run = await h.reconciler.runOnce({ drift: true });
    expect(run.drift.map((d) => d.kind)).toEqual(['groupDeletedUpstream']);
    expect(await h.store.groupsOfUser(a.id)).toEqual([]);
    await expectInvariants(h, [a]);
  });
});

describe.skipIf(!kinds.includes('postgres'))('reconciler leadership on PostgreSQL', () => {
  it('one of two bridges leads; when it stops, the other takes over', async () => {
    const a = await startHarness({ store: 'postgres' });
    const b = await startHarness({ peer: a });
    try {
      expect(await a.reconciler.lead()).toBe(true);
      expect(await b.reconciler.lead()).toBe(false);
      const userName = uniqueName('lead');
      const id = await createUser(a, userName);
      a.emulator.setFaults([{ action: 'DeleteUser', probability: 1, fault: 'InternalError' }]);
      expect((await setActive(a, id, false)).status).toBeGreaterThanOrEqual(500);
      a.emulator.setFaults([]);
      // The follower does nothing.
      expect(await b.reconciler.runOnce({ ignoreBackoff: true })).toMatchObject({ settled: 0, pending: 0 });
      expect(await a.store.countIntents()).toBe(1);
      await a.reconciler.stop();
      expect(await b.reconciler.lead()).toBe(true);
      await b.settle();
      expect(b.reconciler.report().leader).toBe(true);
      await expectInvariants(b, [{ id, userName }]);
    } finally {
      await b.close();
      await a.close();
    }
  });
});
