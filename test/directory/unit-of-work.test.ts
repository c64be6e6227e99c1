// One unit of work = one store transaction: the operation's final state and its audit record,
// built from what the operation said it changed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitProgress, committedUser, UnitOfWork } from '../../src/directory/unit-of-work.js';
import type { AuditRecord } from '../../src/store/audit-types.js';
import { StoreConflictError } from '../../src/store/types.js';
import { openTestStore, type StoreKind, storeKinds, type TestStore, testContext } from '../helpers/domain.js';
import { newGroup, newUser } from '../store/contract.js';

describe.each(await storeKinds())('UnitOfWork (%s store)', (kind: StoreKind) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await openTestStore(kind);
  });
  afterAll(() => t.close());

  const recordsOf = (requestId: string | null): Promise<AuditRecord[]> =>
    t.store.listAudit({ limit: 500 }).then((all) => all.filter((r) => r.requestId === requestId).reverse());

  it('commits the writes and one audit record saying who, what and how it ended', async () => {
    const { ctx, calls } = testContext({ actor: 'okta', method: 'POST' });
    calls.push({ action: 'CreateUser', requestId: 'up-1', outcome: 'ok' });
    const user = newUser({
      userName: 'uow-alice@example.com',
      attributes: { userName: 'uow-alice@example.com', displayName: 'Alice' },
    });
    const result = await new UnitOfWork(t.store, ctx, { type: 'User', id: user.scimId, name: user.userName })
      .write({ op: 'insertUser', record: user })
      .user(null, { ...user })
      .note('first note')
      .note('second note')
      .commit('created');
    expect(committedUser(result, user.scimId)).toMatchObject({
      scimId: user.scimId,
      version: expect.any(Number),
    });
    expect(await t.store.getUser(user.scimId)).not.toBeNull();
    const [record] = await recordsOf(ctx.origin.requestId);
    expect(record).toMatchObject({
      actor: 'okta',
      method: 'POST',
      clientIp: '127.0.0.1',
      resourceType: 'User',
      resourceId: user.scimId,
      resourceName: 'uow-alice@example.com',
      status: 201,
      upstream: [{ action: 'CreateUser', requestId: 'up-1', outcome: 'ok' }],
    });
    expect(record.changes).toMatchObject({
      created: true,
      attributes: ['displayName', 'userName'],
      fields: {
        UserName: { from: null, to: 'uow-alice@example.com' },
        DisplayName: { from: null, to: 'Alice' },
      },
      note: 'first note; second note',
    });
    // The operation's subject is what the request's refusal record would name too.
    expect(ctx.origin.subject).toEqual({ type: 'User', id: user.scimId, name: user.userName });
  });

  it('is all or nothing: a write the store refuses leaves neither the other writes nor the record', async () => {
    const { ctx } = testContext();
    const taken = newUser({ userName: 'uow-taken@example.com' });
    await t.store.insertUser(taken);
    const group = newGroup();
    const unit = new UnitOfWork(t.store, ctx, { type: 'Group', id: group.scimId, name: group.displayName })
      .write({ op: 'insertGroup', record: group })
      .write({ op: 'insertUser', record: newUser({ userName: 'UOW-TAKEN@example.com' }) })
      .group(null, group);
    await expect(unit.commit('created')).rejects.toBeInstanceOf(StoreConflictError);
    expect(unit.committed).toBe(false);
    expect(await t.store.getGroup(group.scimId)).toBeNull();
    expect(await recordsOf(ctx.origin.requestId)).toEqual([]);
  });

  it('commits once', async () => {
    const { ctx } = testContext();
    const unit = new UnitOfWork(t.store, ctx, { type: 'User', id: 'u-once', name: null }).note(
      'nothing to write',
    );
    await unit.commit('changed');
    expect(unit.committed).toBe(true);
    await expect(unit.commit('changed')).rejects.toThrow('a unit of work commits once');
  });

  it("a request's final record replaces the record of its start: one record per finished request", async () => {
    const { ctx } = testContext();
    const subject = { type: 'User' as const, id: 'u-started', name: 'started@example.com' };
    await new UnitOfWork(t.store, ctx, subject).note('create started').commit('started');
    expect(ctx.origin.startRecorded).toBe(true);
    expect((await recordsOf(ctx.origin.requestId)).map((r) => r.status)).toEqual([102]);
    await new UnitOfWork(t.store, ctx, subject).note('created').commit('created');
    const records = await recordsOf(ctx.origin.requestId);
    expect(records.map((r) => [r.status, r.changes.note])).toEqual([[201, 'created']]);
  });

  it('a start record stays when the request never finishes, and another request does not replace it', async () => {
    const first = testContext();
    const subject = { type: 'User' as const, id: 'u-cut', name: null };
    await new UnitOfWork(t.store, first.ctx, subject).commit('started');
    const second = testContext();
    await new UnitOfWork(t.store, second.ctx, subject).commit('started');
    await new UnitOfWork(t.store, second.ctx, subject).commit('changed');
    expect((await recordsOf(first.ctx.origin.requestId)).map((r) => r.status)).toEqual([102]);
    expect((await recordsOf(second.ctx.origin.requestId)).map((r) => r.status)).toEqual([200]);
  });

  it("names the members a group change touched, so each member's history finds it", async () => {
    const { ctx } = testContext();
    const group = newGroup();
    await t.store.insertGroup(group);
    const unit = new UnitOfWork(t.store, ctx, { type: 'Group', id: group.scimId, name: group.displayName })
      .members([{ id: 'u-m1', userName: 'm1@example.com' }], [])
      .members([], [{ id: 'u-m2', userName: null }])
      .members([], []);
    await unit.commit('changed');
    const [record] = await recordsOf(ctx.origin.requestId);
    expect(record.changes.members).toEqual({
      added: [{ id: 'u-m1', userName: 'm1@example.com' }],
      removed: [{ id: 'u-m2', userName: null }],
    });
    for (const member of ['u-m1', 'u-m2']) {
      const history = await t.store.listAudit({ resource: member, limit: 10 });
      expect(history.map((r) => r.id)).toContain(record.id);
    }
  });

  it('a settle inside a request records only the CloudIdentity calls made from then on', async () => {
    const { ctx, calls } = testContext();
    calls.push({ action: 'GetUser', outcome: 'ok' });
    const settle = new UnitOfWork(
      t.store,
      ctx,
      { type: 'User', id: 'u-own', name: null },
      'settle user.delete',
      true,
    );
    calls.push({ action: 'DeleteUser', outcome: 'ok' });
    await settle.commit('settled');
    const [record] = await recordsOf(ctx.origin.requestId);
    expect(record.method).toBe('settle user.delete');
    expect(record.upstream.map((c) => c.action)).toEqual(['DeleteUser']);
  });

  it('committedUser refuses a result in which the unit deleted the user', async () => {
    const user = newUser();
    await t.store.insertUser(user);
    const { ctx } = testContext();
    const result = await new UnitOfWork(t.store, ctx, { type: 'User', id: user.scimId, name: null })
      .write({ op: 'deleteUser', scimId: user.scimId })
      .user(user, null)
      .commit('deleted');
    expect(() => committedUser(result, user.scimId)).toThrow(`did not write user ${user.scimId}`);
    expect(() => committedUser(result, 'u-never-written')).toThrow('did not write user u-never-written');
  });

  it('commitProgress writes without a record of its own', async () => {
    const user = newUser();
    const before = (await t.store.listAudit({ limit: 500 })).length;
    await commitProgress(t.store, [{ op: 'insertUser', record: user }]);
    expect(await t.store.getUser(user.scimId)).not.toBeNull();
    expect((await t.store.listAudit({ limit: 500 })).length).toBe(before);
  });
});
