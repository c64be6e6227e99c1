// Issue 16 on PostgreSQL, through HTTP: a SCIM write whose final unit of work (one pipelined round
// trip: BEGIN, its statements, COMMIT) loses its connection answers 503 with Retry-After and a SCIM
// error body, never 2xx. Killed before COMMIT: the acknowledged state stays as it was (an operation
// under an intent keeps the intent for the reconciler), and /readyz is not ready while writes fail,
// ready again once one commits. The COMMIT's answer lost: PostgreSQL, asked on another connection,
// says the unit committed, and the request answers 200 with one record in the trail. A held lock stops the unit at an exact statement, where
// its backend is killed (LockHolder); the lost answer is cut by a proxy (CommitAnswerProxy).
import { afterEach, describe, expect, it } from 'vitest';
import { IntentKind } from '../../src/directory/intents.js';
import type { UserRecord } from '../../src/store/types.js';
import { ApiGate } from '../helpers/api-gate.js';
import { CommitAnswerProxy } from '../helpers/commit-answer-proxy.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { LockHolder } from '../helpers/pg-lock-kill.js';
import { freshPostgresUrl, TEST_DATABASE_URL } from '../helpers/postgres.js';
import { createUser, fire, setActive } from './consistency-support.js';
import { expectScimError, patchBody, uniqueName } from './users-support.js';

const probe = await freshPostgresUrl();
const skip = 'skip' in probe ? probe.skip : undefined;
if (!('skip' in probe)) await probe.drop();
if (skip) console.warn(`[skip] PostgreSQL unit-killed tests not run: ${skip}`);

type Res = Awaited<ReturnType<Harness['http']['get']>>;

/** A 503 for the store, with Retry-After and a SCIM error body naming no driver detail. */
function expectStoreUnavailable(res: Res): void {
  expectScimError(res, 503);
  expect(res.headers['retry-after']).toMatch(/^\d+$/);
  expect(String(res.body.detail)).toMatch(/store/);
  expect(res.text).not.toMatch(/57P01|terminat|postgres:\/\//i);
}

/**
 * /readyz while writes still fail (its heartbeat write is killed at the held store_meta lock): 503;
 * once the locks are gone, the heartbeat commits and it is 200 again.
 */
async function expectNotReadyUntilWritesCommit(h: Harness, locks: LockHolder): Promise<void> {
  const check = fire(h.http.get('/readyz'));
  const heartbeat = await locks.killNextWaiter(check);
  expect(heartbeat.query).toMatch(/INSERT INTO store_meta/);
  const down = await check;
  expect(down.status, down.text).toBe(503);
  expect(down.body.status).toBe('not_ready');
  // Killed (or, on a machine slow enough, given up on by readiness's own timeout first).
  expect(down.body.reason).toMatch(/^store (cannot write|heartbeat write timed out)/);
  await locks.release();
  const up = await h.http.get('/readyz');
  expect(up.status, up.text).toBe(200);
  expect(h.store.writeFailureReason?.()).toBeNull();
}

describe.skipIf(skip !== undefined)('a SCIM write whose final unit loses its PostgreSQL connection', () => {
  let h: Harness | undefined;
  let locks: LockHolder | undefined;
  let proxy: CommitAnswerProxy | undefined;
  afterEach(async () => {
    await locks?.end();
    await h?.close();
    await proxy?.close();
    h = locks = proxy = undefined;
  });

  it('deprovisioning killed before COMMIT: 503, the record and intent as they were, not ready until a write commits, then settled', async () => {
    const gate = new ApiGate();
    h = await startHarness({
      store: 'postgres',
      env: { READINESS_CACHE_MS: '0', DEACTIVATE_ACTION: 'delete' },
      wrapApi: (api) => gate.wrap(api),
    });
    locks = await LockHolder.connect(h.databaseUrl!);
    const id = await createUser(h, uniqueName('pg-kill-deprov'));
    const before = (await h.store.getUser(id)) as UserRecord;
    const requestId = 'pg-kill-deprovision';

    // The intent and the record of the start are committed; DeleteUser is about to be sent.
    const held = gate.hold('deleteUser', 'before');
    const patch = fire(
      h.http
        .patch(`/scim/v2/Users/${id}`)
        .set('X-Request-Id', requestId)
        .send(patchBody({ op: 'replace', path: 'active', value: false })),
    );
    await held.reached;
    // The final unit replaces the start record: its statements before that (the tombstone, the
    // intent cleared) run, and it queues on the row. So does the record of the failure, and the
    // readiness heartbeat on store_meta.
    await locks.hold('SELECT 1 FROM audit WHERE request_id = $1 AND status = 102 FOR UPDATE', [requestId]);
    await locks.hold('LOCK TABLE store_meta IN SHARE MODE');
    held.release();
    const finalUnit = await locks.killNextWaiter(patch);
    expect(finalUnit.query).toMatch(/DELETE FROM audit WHERE request_id/);
    expect(finalUnit.wrote).toEqual(expect.arrayContaining(['intents', 'users']));
    const failureRecord = await locks.killNextWaiter(patch);
    expect(failureRecord.query).toMatch(/DELETE FROM audit WHERE request_id/);

    const res = await patch;
    expectStoreUnavailable(res);
    expect(h.store.writeFailureReason?.()).toBe('PostgreSQL: 57P01');
    // Nothing of the final unit: the record as acknowledged, the intent kept, the start record alone.
    expect(await h.store.getUser(id)).toEqual(before);
    expect((await h.store.intentsOf(`user:${id}`)).map((i) => i.kind)).toEqual([IntentKind.deactivate]);
    const trail = await h.store.listAudit({ resource: id, limit: 50 });
    expect(trail.filter((r) => r.requestId === requestId).map((r) => r.status)).toEqual([102]);
    // DeleteUser was done: CloudIdentity has no account, so a read shows the user inactive while the
    // intent is pending (users-read.ts inFlight).
    expect((await h.upstream()).users.map((u) => u.UserId)).not.toContain(before.upstreamUserId);

    await expectNotReadyUntilWritesCommit(h, locks);

    const read = await h.http.get(`/scim/v2/Users/${id}`);
    expect(read.status, read.text).toBe(200);
    expect(read.body.active).toBe(false);
    // The reconciler finishes it: the tombstone, the intent cleared.
    await h.settle();
    expect(await h.store.intentsOf(`user:${id}`)).toEqual([]);
    expect(await h.store.getUser(id)).toMatchObject({ active: false, upstreamUserId: null });
    // The IdP's retry of the same change: done already.
    const retried = await setActive(h, id, false);
    expect(retried.status, retried.text).toBe(200);
    expect(retried.body.active).toBe(false);
  });

  it('a change of attributes killed before COMMIT: 503, and the next GET shows the user as before', async () => {
    h = await startHarness({ store: 'postgres', env: { READINESS_CACHE_MS: '0' } });
    locks = await LockHolder.connect(h.databaseUrl!);
    const id = await createUser(h, uniqueName('pg-kill-attr'));
    const before = await h.http.get(`/scim/v2/Users/${id}`);
    // The unit's update runs, its audit record queues (so does the record of the failure, and the
    // readiness heartbeat).
    await locks.hold('LOCK TABLE audit IN SHARE MODE');
    await locks.hold('LOCK TABLE store_meta IN SHARE MODE');
    const patch = fire(
      h.http
        .patch(`/scim/v2/Users/${id}`)
        .send(patchBody({ op: 'replace', path: 'externalId', value: 'never-acknowledged' })),
    );
    const finalUnit = await locks.killNextWaiter(patch);
    expect(finalUnit.query).toMatch(/INSERT INTO audit/);
    expect(finalUnit.wrote).toEqual(expect.arrayContaining(['users']));
    const failureRecord = await locks.killNextWaiter(patch);
    expect(failureRecord.query).toMatch(/INSERT INTO audit/);

    const res = await patch;
    expectStoreUnavailable(res);
    expect(h.store.writeFailureReason?.()).toBe('PostgreSQL: 57P01');
    await expectNotReadyUntilWritesCommit(h, locks);

    const after = await h.http.get(`/scim/v2/Users/${id}`);
    expect(after.status).toBe(200);
    expect(after.body.externalId).toBe(before.body.externalId);
    expect(after.headers.etag).toBe(before.headers.etag);
    const retried = await h.http
      .patch(`/scim/v2/Users/${id}`)
      .send(patchBody({ op: 'replace', path: 'externalId', value: 'acknowledged' }));
    expect(retried.status, retried.text).toBe(200);
    expect(retried.body.externalId).toBe('acknowledged');
  });

  it('deprovisioning whose COMMIT answer is lost: PostgreSQL, asked again, says it committed, so it answers 200', async () => {
    const gate = new ApiGate();
    proxy = new CommitAnswerProxy(TEST_DATABASE_URL);
    await proxy.start();
    h = await startHarness({
      store: 'postgres',
      env: { DEACTIVATE_ACTION: 'delete' },
      wrapApi: (api) => gate.wrap(api),
      databaseUrlVia: (schemaUrl) => proxy!.via(schemaUrl),
    });
    const id = await createUser(h, uniqueName('pg-lost-commit'));
    const requestId = 'pg-lost-commit-answer';
    const held = gate.hold('deleteUser', 'before');
    const patch = fire(
      h.http
        .patch(`/scim/v2/Users/${id}`)
        .set('X-Request-Id', requestId)
        .send(patchBody({ op: 'replace', path: 'active', value: false })),
    );
    await held.reached;
    // The next COMMIT is the final unit's.
    let lost = false;
    void proxy.loseNextCommitAnswer().then(() => {
      lost = true;
    });
    held.release();

    const res = await patch;
    expect(lost, 'the answer to the final COMMIT was lost').toBe(true);
    expect(res.status, res.text).toBe(200);
    expect(res.body.active).toBe(false);
    // The unit is in the store whole: the tombstone, the intent cleared, the change's one record.
    expect(await h.store.intentsOf(`user:${id}`)).toEqual([]);
    expect(await h.store.getUser(id)).toMatchObject({ active: false, upstreamUserId: null });
    const trail = await h.store.listAudit({ resource: id, limit: 50 });
    expect(trail.filter((r) => r.requestId === requestId).map((r) => r.status)).toEqual([200]);
    const ready = await h.http.get('/readyz');
    expect(ready.status, ready.text).toBe(200);
  });
});
