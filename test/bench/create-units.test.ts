import { afterEach, describe, expect, it } from 'vitest';
import {
  CREATE_STARTED_NOTE,
  type CreateAttempt,
  createdFields,
  failedUnit,
  pendingUnit,
  readyUnit,
} from '../../bench/floor/create-units.js';
import { openStore } from '../../src/store/index.js';
import type { BridgeStore, UserRecord } from '../../src/store/types.js';

const attempt = (over: Partial<CreateAttempt> = {}): CreateAttempt => ({
  scimId: '2f1c6a52-7a43-4c0e-9a55-2b1b8f6b0c11',
  userName: 'ann@example.com',
  externalId: 'ext-1',
  attributes: { userName: 'ann@example.com', displayName: 'Ann' },
  requestId: 'req-1',
  actor: 'sha256:0123456789ab',
  clientIp: '127.0.0.1',
  startedAt: Date.now(),
  ...over,
});
const input = { UserName: 'ann@example.com', DisplayName: 'Ann', Email: 'ann@example.com' };
const calls = [{ action: 'CreateUser', requestId: 'REQ1', outcome: 'ok' }];

let store: BridgeStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

describe("a create's units of work (the durable floor's and the store micro-benchmark's)", () => {
  it('records the CloudIdentity fields a create set, old → new', () => {
    expect(createdFields({ UserName: 'bo', Phone: '+1' })).toEqual({
      UserName: { from: null, to: 'bo' },
      Phone: { from: null, to: '+1' },
    });
  });

  it('start with the pending record and the record that the create started', () => {
    const [insert, audit] = pendingUnit(attempt());
    expect(insert).toMatchObject({ op: 'insertUser', record: { state: 'pending', upstreamUserId: null } });
    expect(audit).toMatchObject({
      op: 'appendAudit',
      replacesStart: false,
      entry: { status: 102, method: 'POST', requestId: 'req-1', changes: { note: CREATE_STARTED_NOTE } },
    });
  });

  it("leave, once committed on the bridge's store, a ready record mapped to the UserId and one audit record", async () => {
    store = await openStore({ inMemory: true });
    const a = attempt();
    const pending = (await store.commit(pendingUnit(a))).users.get(a.scimId) as UserRecord;
    expect((await store.listAudit({ limit: 10 })).map((r) => r.status)).toEqual([102]);
    await store.commit(readyUnit(a, pending.version, 'upstream-1', input, calls));
    const found = await store.getUserWithGroups(a.scimId);
    expect(found?.record).toMatchObject({
      state: 'ready',
      upstreamUserId: 'upstream-1',
      externalId: 'ext-1',
    });
    const trail = await store.listAudit({ limit: 10 });
    expect(trail).toHaveLength(1);
    expect(trail[0]).toMatchObject({
      status: 201,
      resourceId: a.scimId,
      upstream: calls,
      changes: { fields: { DisplayName: { from: null, to: 'Ann' } } },
    });
  });

  it("of a create CloudIdentity refused, leave no record and the failure's audit record", async () => {
    store = await openStore({ inMemory: true });
    const a = attempt();
    await store.commit(pendingUnit(a));
    await store.commit(failedUnit(a, 409, 'userName is taken', []));
    expect(await store.getUser(a.scimId)).toBeNull();
    const trail = await store.listAudit({ limit: 10 });
    expect(trail.map((r) => [r.status, r.detail])).toEqual([[409, 'userName is taken']]);
  });
});
