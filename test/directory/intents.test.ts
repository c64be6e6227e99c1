// Intent first: a multi-step operation commits its intent before its first step and clears it with
// its final state; whoever next holds the resource settles an intent a failure left.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notFound } from '../../src/directory/errors.js';
import { describe as describeError, IntentKind, Intents, subjectOf } from '../../src/directory/intents.js';
import type { AuditRecord } from '../../src/store/audit-types.js';
import type { IntentRecord } from '../../src/store/types.js';
import { VolcengineApiError } from '../../src/volcengine/errors.js';
import { openTestStore, type StoreKind, storeKinds, type TestStore, testContext } from '../helpers/domain.js';
import { newUser } from '../store/contract.js';

describe('subjectOf and describe', () => {
  it("names the resource of an intent's key", () => {
    expect(subjectOf('user:abc')).toEqual({ type: 'User', id: 'abc', name: null });
    expect(subjectOf('group:g:1')).toEqual({ type: 'Group', id: 'g:1', name: null });
  });

  it('keeps code and message of an error, nothing else', () => {
    const upstream = new VolcengineApiError('DeleteUser', 'InternalError', 500, 'r-1', 'boom');
    expect(describeError(upstream)).toBe(`InternalError: ${upstream.message}`);
    expect(describeError(new TypeError('bad'))).toBe('TypeError: bad');
    expect(describeError('text')).toBe('text');
  });
});

describe.each(await storeKinds())('Intents (%s store)', (kind: StoreKind) => {
  let t: TestStore;
  beforeAll(async () => {
    t = await openTestStore(kind);
  });
  afterAll(() => t.close());

  let n = 0;
  const resource = () => `user:intent-${kind}-${++n}`;
  const recordsOf = async (requestId: string | null): Promise<AuditRecord[]> =>
    (await t.store.listAudit({ limit: 1000 })).filter((r) => r.requestId === requestId).reverse();

  it('run: the intent and a start record first, then the final state, the intent cleared and one record', async () => {
    const intents = new Intents(t.store);
    const { ctx } = testContext({ method: 'PATCH' });
    const key = resource();
    const user = newUser();
    const seen: { during: IntentRecord[]; records: number[] } = { during: [], records: [] };
    const done = await intents.run(
      key,
      IntentKind.deactivate,
      { scimId: user.scimId },
      ctx,
      {
        subject: { type: 'User', id: user.scimId, name: user.userName },
        outcome: 'changed',
        first: [{ op: 'insertUser', record: user }],
      },
      async (unit, intent) => {
        seen.during = await t.store.intentsOf(key);
        seen.records = (await recordsOf(ctx.origin.requestId)).map((r) => r.status);
        expect(intent.id).toBe(seen.during[0].id);
        unit.write({ op: 'updateUser', scimId: user.scimId, changes: { active: false } }).user(user, {
          ...user,
          active: false,
        });
        return 'value';
      },
    );
    expect(seen.during).toEqual([
      expect.objectContaining({
        resource: key,
        kind: IntentKind.deactivate,
        payload: { scimId: user.scimId },
      }),
    ]);
    expect(seen.records).toEqual([102]);
    expect(done.value).toBe('value');
    // Both commits' records: the user inserted with the intent, then its final state.
    expect(done.committed.users.get(user.scimId)).toMatchObject({ active: false });
    expect(await t.store.intentsOf(key)).toEqual([]);
    const records = await recordsOf(ctx.origin.requestId);
    expect(records.map((r) => r.status)).toEqual([200]);
    expect(records[0].changes.fields).toEqual({ active: { from: true, to: false } });
  });

  it('run: a failure part-way leaves the intent and the start record, and says so in the log', async () => {
    const intents = new Intents(t.store);
    const { ctx, logs } = testContext();
    const key = resource();
    const failure = new Error('connection reset');
    await expect(
      intents.run(
        key,
        IntentKind.delete,
        {},
        ctx,
        { subject: subjectOf(key), outcome: 'deleted' },
        async () => {
          throw failure;
        },
      ),
    ).rejects.toBe(failure);
    expect(await t.store.intentsOf(key)).toHaveLength(1);
    expect((await recordsOf(ctx.origin.requestId)).map((r) => r.status)).toEqual([102]);
    expect(logs.some((l) => l.msg === 'operation failed part-way: its intent is left')).toBe(true);
  });

  it('run: an error that decides the operation (a 4xx) clears the intent', async () => {
    const intents = new Intents(t.store);
    const { ctx } = testContext();
    const key = resource();
    await expect(
      intents.run(
        key,
        IntentKind.delete,
        {},
        ctx,
        { subject: subjectOf(key), outcome: 'deleted' },
        async () => {
          throw notFound('gone');
        },
      ),
    ).rejects.toThrow('gone');
    expect(await t.store.intentsOf(key)).toEqual([]);
  });

  it('settle: replays every pending intent, oldest first, as a replay, each with its own record', async () => {
    const intents = new Intents(t.store);
    const key = resource();
    const replays: Array<{ id: string; payload: unknown; resumed: boolean }> = [];
    intents.register(IntentKind.members, async (payload, _ctx, unit, intent, resumed) => {
      replays.push({ id: intent.id, payload, resumed });
      unit.note(`replayed ${String(payload.step)}`);
    });
    const observed: string[] = [];
    intents.observe((intent, outcome) => observed.push(`${intent.id}:${outcome}`));
    const ids = [`1-${key}`, `2-${key}`];
    for (const [i, id] of ids.entries()) {
      await t.store.commit([
        { op: 'putIntent', intent: { id, resource: key, kind: IntentKind.members, payload: { step: i } } },
      ]);
    }
    const { ctx } = testContext({ method: 'reconcile' });
    expect(await intents.settle(key, ctx)).toBe(2);
    expect(replays).toEqual([
      { id: ids[0], payload: { step: 0 }, resumed: true },
      { id: ids[1], payload: { step: 1 }, resumed: true },
    ]);
    expect(observed).toEqual([`${ids[0]}:completed`, `${ids[1]}:completed`]);
    expect(await t.store.intentsOf(key)).toEqual([]);
    const records = await recordsOf(ctx.origin.requestId);
    expect(records.map((r) => [r.method, r.resourceType, r.resourceId])).toEqual([
      ['settle group.members', 'User', key.slice('user:'.length)],
      ['settle group.members', 'User', key.slice('user:'.length)],
    ]);
    expect(records[0].changes.note).toContain(`settled intent ${ids[0]}`);
    expect(records[0].changes.note).toContain('replayed 0');
  });

  it('settle: the first failure stops it, keeps the intent and records the attempt with its backoff', async () => {
    const intents = new Intents(t.store);
    const key = resource();
    let calls = 0;
    intents.register(IntentKind.reactivate, async () => {
      calls++;
      throw new Error('still down');
    });
    const observed: string[] = [];
    intents.observe((_intent, outcome) => observed.push(outcome));
    for (const id of [`1-${key}`, `2-${key}`]) {
      await t.store.commit([
        { op: 'putIntent', intent: { id, resource: key, kind: IntentKind.reactivate, payload: {} } },
      ]);
    }
    const retryAt = new Date(Date.now() + 3_600_000);
    const { ctx } = testContext();
    await expect(intents.settle(key, ctx, () => retryAt)).rejects.toThrow('still down');
    expect(calls).toBe(1);
    expect(observed).toEqual(['failed']);
    const [first, second] = await t.store.intentsOf(key);
    expect(first).toMatchObject({ attempts: 1, lastError: 'Error: still down' });
    expect(Date.parse(first.nextAttemptAt)).toBe(retryAt.getTime());
    expect(second).toMatchObject({ attempts: 0, lastError: null });
  });

  it('settle: an intent whose replay is decided (e.g. the resource is gone) ends with a record saying so', async () => {
    const intents = new Intents(t.store);
    const key = resource();
    intents.register(IntentKind.delete, async () => {
      throw notFound('User x not found');
    });
    await t.store.commit([
      { op: 'putIntent', intent: { id: `1-${key}`, resource: key, kind: IntentKind.delete, payload: {} } },
    ]);
    const { ctx } = testContext();
    await intents.settle(key, ctx);
    expect(await t.store.intentsOf(key)).toEqual([]);
    const [record] = await recordsOf(ctx.origin.requestId);
    expect(record.method).toBe('settle user.delete');
    expect(record.changes.note).toMatch(/ended without change: .*User x not found/);
  });

  it('settle: an intent of a kind this build does not know is kept, never dropped', async () => {
    const intents = new Intents(t.store);
    const key = resource();
    await t.store.commit([
      { op: 'putIntent', intent: { id: `1-${key}`, resource: key, kind: 'user.future', payload: {} } },
    ]);
    const { ctx } = testContext();
    await expect(intents.settle(key, ctx)).rejects.toThrow("unknown intent kind 'user.future'");
    expect(await t.store.intentsOf(key)).toHaveLength(1);
  });
});
