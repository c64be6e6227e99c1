// One unit of work per change, through HTTP on both stores: what a write costs upstream (a create is
// one CreateUser, a PATCH of attributes at most GetUser + UpdateUser), that every acknowledged write
// has exactly its audit record (by request id) with its before/after, that reconciler and drift
// actions are recorded with actor `reconciler`, and that a write whose final commit fails is answered
// 503 with Retry-After and leaves the acknowledged state as it was.
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/store/audit-types.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import type { BridgeStore, StoreWrite } from '../../src/store/types.js';
import { type Harness, startHarness, storeKinds } from '../helpers/harness.js';
import { createGroup, createUser, setActive } from './consistency-support.js';
import { patchBody, uniqueName, userBody } from './users-support.js';

const kinds = await storeKinds();
const ADMIN = 'admin-token-for-units-0123456789';

type Calls = Record<string, number>;
const delta = (before: Calls, after: Calls): Calls => {
  const out: Calls = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) out[k] = v - (before[k] ?? 0);
  return out;
};

/** Fails the next unit of work whose writes match `when`, as if the database went away at COMMIT. */
class FailingCommit {
  private armed: ((writes: readonly StoreWrite[]) => boolean) | undefined;
  failNext(when: (writes: readonly StoreWrite[]) => boolean): void {
    this.armed = when;
  }
  wrap(store: BridgeStore): BridgeStore {
    return new Proxy(store, {
      get: (target, prop) => {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (prop !== 'commit') return value.bind(target);
        return (writes: readonly StoreWrite[]) => {
          if (this.armed?.(writes)) {
            this.armed = undefined;
            return Promise.reject(new StoreUnavailableError('injected by the test'));
          }
          return value.call(target, writes);
        };
      },
    });
  }
}

describe.each(kinds)('one unit of work per change (%s store)', (store) => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const trail = async (query: string): Promise<AuditRecord[]> => {
    const res = await h!.http.get(`/admin/api/audit?${query}`).set('Authorization', `Bearer ${ADMIN}`);
    expect(res.status).toBe(200);
    return res.body.records;
  };
  const byRequest = async (requestId: string) =>
    (await trail('limit=500')).filter((r) => r.requestId === requestId && r.status !== 102);

  it('a create is one CreateUser and its 201 equals the following GET; a PATCH is at most GetUser + UpdateUser', async () => {
    h = await startHarness({ store, env: { ADMIN_TOKENS: ADMIN } });
    const userName = uniqueName('uow-create');
    const before = (await h.upstream()).calls;
    const created = await h.http
      .post('/scim/v2/Users')
      .set('X-Request-Id', 'uow-create-1')
      .send(userBody(userName));
    expect(created.status, created.text).toBe(201);
    expect(delta(before, (await h.upstream()).calls)).toEqual({ CreateUser: 1 });
    const read = await h.http.get(`/scim/v2/Users/${created.body.id}`);
    expect(read.status).toBe(200);
    // supertest serves each request on a port of its own: meta.location differs by the port only.
    const path = (body: Record<string, unknown>) => {
      const { groups: _groups, meta, ...rest } = body as { groups?: unknown; meta: { location: string } };
      return { ...rest, meta: { ...meta, location: new URL(meta.location).pathname } };
    };
    expect(path(created.body)).toEqual(path(read.body));
    expect(read.body.groups ?? []).toEqual([]);
    expect(created.headers.etag).toBe(read.headers.etag);

    const beforePatch = (await h.upstream()).calls;
    const patched = await h.http
      .patch(`/scim/v2/Users/${created.body.id}`)
      .set('X-Request-Id', 'uow-patch-1')
      .send(patchBody({ op: 'replace', path: 'displayName', value: 'Patched Name' }));
    expect(patched.status, patched.text).toBe(200);
    expect(delta(beforePatch, (await h.upstream()).calls)).toEqual({ GetUser: 1, UpdateUser: 1 });

    const [create] = await byRequest('uow-create-1');
    expect(create).toMatchObject({
      method: 'POST',
      status: 201,
      resourceId: created.body.id,
      resourceName: userName,
    });
    const [patch] = await byRequest('uow-patch-1');
    expect(patch.changes.fields).toEqual({ DisplayName: { from: 'Given Family', to: 'Patched Name' } });
  });

  it('every acknowledged write has exactly its record, by request id; a refused one has its own', async () => {
    h = await startHarness({ store, env: { ADMIN_TOKENS: ADMIN, DEACTIVATE_ACTION: 'delete' } });
    const userName = uniqueName('uow-each');
    const send = (id: string, req: ReturnType<Harness['http']['get']>) => req.set('X-Request-Id', id);
    const u = await send('e-1', h.http.post('/scim/v2/Users')).send(userBody(userName));
    expect(u.status).toBe(201);
    const g = await send('e-2', h.http.post('/scim/v2/Groups')).send({
      displayName: uniqueName('uow-g', 'g'),
    });
    expect(g.status).toBe(201);
    const steps: Array<[string, number]> = [
      ['e-1', 201],
      ['e-2', 201],
    ];
    const add = await send('e-3', h.http.patch(`/scim/v2/Groups/${g.body.id}`)).send(
      patchBody({ op: 'add', path: 'members', value: [{ value: u.body.id }] }),
    );
    steps.push(['e-3', add.status]);
    const off = await send('e-4', h.http.patch(`/scim/v2/Users/${u.body.id}`)).send(
      patchBody({ op: 'replace', path: 'active', value: false }),
    );
    steps.push(['e-4', off.status]);
    const on = await send('e-5', h.http.patch(`/scim/v2/Users/${u.body.id}`)).send(
      patchBody({ op: 'replace', path: 'active', value: true }),
    );
    steps.push(['e-5', on.status]);
    const gone = await send('e-6', h.http.delete(`/scim/v2/Groups/${g.body.id}`));
    steps.push(['e-6', gone.status]);
    const bad = await send('e-7', h.http.post('/scim/v2/Users'))
      .set('Content-Type', 'application/json')
      .send('{"userName": ');
    expect(bad.status).toBe(400);
    for (const [id, status] of steps) {
      expect(status).toBeLessThan(300);
      const records = await byRequest(id);
      expect(
        records.map((r) => r.status),
        id,
      ).toEqual([status]);
    }
    const [refused] = await byRequest('e-7');
    expect(refused).toMatchObject({
      status: 400,
      scimType: 'invalidSyntax',
      method: 'POST',
      resourceType: 'User',
    });
    const [deactivate] = await byRequest('e-4');
    expect(deactivate.changes.fields?.active).toEqual({ from: true, to: false });
    const [reactivate] = await byRequest('e-5');
    expect(reactivate.changes.groups).toEqual({ added: [g.body.id], removed: [] });
    const [groupDelete] = await byRequest('e-6');
    expect(groupDelete.changes.deleted).toBe(true);
  });

  it('reconciler and drift actions are recorded with actor reconciler and what they settled', async () => {
    h = await startHarness({ store, env: { ADMIN_TOKENS: ADMIN } });
    const userName = uniqueName('uow-rec');
    const id = await createUser(h, userName);
    h.emulator.setFaults([{ action: 'DeleteUser', probability: 1, fault: 'InternalError' }]);
    expect((await setActive(h, id, false)).status).toBeGreaterThanOrEqual(500);
    const [intent] = await h.store.intentsOf(`user:${id}`);
    h.emulator.setFaults([]);
    await h.settle();
    const settled = (await trail(`actor=reconciler&resource=${id}`)).find(
      (r) => r.method === 'settle user.deactivate',
    );
    expect(settled).toBeDefined();
    expect(settled!.changes.note).toContain(intent.id);
    expect(settled!.changes.fields?.active).toEqual({ from: true, to: false });
    expect(settled!.upstream.map((c) => c.action)).toContain('DeleteUser');

    const other = await createUser(h, uniqueName('uow-drift'));
    const groupId = await createGroup(h, uniqueName('uow-drift-g', 'g'), [other]);
    const record = await h.store.getUser(other);
    await h.client.deleteUser({ UserId: record!.upstreamUserId! });
    await h.reconciler.runOnce({ drift: true });
    const repaired = (await trail(`actor=reconciler&resource=${other}`)).find(
      (r) => r.method === 'drift accountDeletedUpstream',
    );
    expect(repaired?.changes.fields?.active).toEqual({ from: true, to: false });
    expect(repaired?.changes.note).toMatch(/deleted outside the bridge/);
    expect(groupId).toBeTruthy();
  });

  it('a write whose final commit fails answers 503 with Retry-After, and the acknowledged state stays', async () => {
    const failing = new FailingCommit();
    h = await startHarness({ store, env: { ADMIN_TOKENS: ADMIN }, wrapStore: (s) => failing.wrap(s) });
    const userName = uniqueName('uow-full');
    const id = await createUser(h, userName);
    const before = await h.http.get(`/scim/v2/Users/${id}`);
    failing.failNext((writes) => writes.some((w) => w.op === 'updateUser' && w.scimId === id));
    const res = await h.http
      .patch(`/scim/v2/Users/${id}`)
      .send(patchBody({ op: 'replace', path: 'externalId', value: 'never-acknowledged' }));
    expect(res.status, res.text).toBe(503);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
    const after = await h.http.get(`/scim/v2/Users/${id}`);
    expect(after.body.externalId).toBe(before.body.externalId);
    expect(after.headers.etag).toBe(before.headers.etag);

    // A create whose final commit fails: 503, its pending record stays (no 201 for an unrecorded user).
    const name2 = uniqueName('uow-full-create');
    failing.failNext((writes) => writes.some((w) => w.op === 'updateUser' && w.changes.state === 'ready'));
    const create = await h.http.post('/scim/v2/Users').send(userBody(name2));
    expect(create.status, create.text).toBe(503);
    expect((await h.store.findUserByUserName(name2))?.state).toBe('pending');
  });
});
