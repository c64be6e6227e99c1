// A reconciler leader frozen past its lease in the middle of a settle, on PostgreSQL with two bridges
// on one schema: PostgreSQL frees its locks, the other bridge leads and settles the intent (a group
// delete), and the frozen one, once it wakes and its DeleteGroup returns, commits nothing (no second
// record): every commit of a settle is fenced on the lead.
import { afterEach, describe, expect, it } from 'vitest';
import { IntentKind } from '../../src/directory/intents.js';
import type { AuditRecord } from '../../src/store/audit-types.js';
import { ApiGate } from '../helpers/api-gate.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { freshPostgresUrl } from '../helpers/postgres.js';
import { createGroup } from './consistency-support.js';
import { uniqueName } from './users-support.js';

const probe = await freshPostgresUrl();
const skip = 'skip' in probe ? probe.skip : undefined;
if (!('skip' in probe)) await probe.drop();
if (skip) console.warn(`[skip] leader fencing test not run: ${skip}`);

const ADMIN = 'admin-token-for-leader-fencing-0123';
const LEASE_MS = 1500;
const ENV = {
  ADMIN_TOKENS: ADMIN,
  RECONCILE_INTERVAL_MS: '300',
  RECONCILE_BACKOFF_MAX_MS: '1000',
  STORE_LOCK_LEASE_MS: String(LEASE_MS),
};

/** Blocks the event loop, as a frozen process (no timer, no socket read) would be. */
function freeze(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy: nothing else runs
  }
}

describe.skipIf(skip !== undefined)('reconciler leader frozen mid-settle (PostgreSQL, two bridges)', () => {
  const open: Harness[] = [];
  afterEach(async () => {
    for (const h of open.reverse()) await h.close().catch(() => undefined);
    open.length = 0;
  });

  it('the frozen leader commits nothing of its settle once the other bridge has taken over', async () => {
    const gate = new ApiGate();
    const a = await startHarness({ store: 'postgres', env: ENV, wrapApi: (api) => gate.wrap(api) });
    open.push(a);
    const b = await startHarness({ peer: a, env: ENV });
    open.push(b);
    const groupId = await createGroup(a, uniqueName('fence-g', 'g'));
    a.emulator.setFaults([{ action: 'DeleteGroup', probability: 1, fault: 'InternalError' }]);
    expect((await a.http.delete(`/scim/v2/Groups/${groupId}`)).status).toBeGreaterThanOrEqual(500);
    a.emulator.setFaults([]);
    expect((await a.store.intentsOf(`group:${groupId}`)).map((i) => i.kind)).toEqual([
      IntentKind.groupDelete,
    ]);

    // a leads and settles; its DeleteGroup is held, then the whole process freezes past the lease.
    const held = gate.hold('deleteGroup', 'before');
    const aRun = a.reconciler.runOnce();
    await held.reached;
    freeze(LEASE_MS * 1.7);
    expect(a.reconciler.report().leader, 'the lease counts as lost on waking').toBe(false);

    // b takes the lead (PostgreSQL ended a's idle sessions) and settles the intent.
    let settled = 0;
    for (let i = 0; i < 50 && settled === 0; i++) {
      settled = (await b.reconciler.runOnce()).settled;
      if (settled === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(settled).toBe(1);
    expect(await a.store.intentsOf(`group:${groupId}`)).toEqual([]);

    held.release();
    // a's DeleteGroup finds the group gone (what it wanted); its settle would record that.
    const late = await aRun;
    expect(late.settled).toBe(0);

    const res = await a.http
      .get(`/admin/api/audit?resource=${groupId}&limit=50`)
      .set('Authorization', `Bearer ${ADMIN}`);
    expect(res.status).toBe(200);
    const settles = (res.body.records as AuditRecord[]).filter(
      (r) => r.method === `settle ${IntentKind.groupDelete}`,
    );
    expect(settles, "one settle record: the new leader's").toHaveLength(1);
    expect(await a.store.getGroup(groupId)).toBeNull();
    expect((await a.upstream()).groups.some((g) => g.GroupId === groupId)).toBe(false);
  });
});
