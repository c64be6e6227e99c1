// The client against the real emulator (src/emulator) over real sockets, including injected faults.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEV_ACCESS_KEY, DEV_SECRET_KEY, type FaultRule, startEmulator } from '../../src/emulator/index.js';
import {
  type ClientObserver,
  CloudIdentityClient,
  type CloudIdentityClientOptions,
  followedUncertainAttempt,
} from '../../src/volcengine/client.js';
import { VolcengineApiError, VolcengineTransportError } from '../../src/volcengine/errors.js';

type Emulator = Awaited<ReturnType<typeof startEmulator>>;

interface Snapshot {
  users: Array<{ UserId: string; UserName: string; DisplayName?: string }>;
  groups: Array<{ GroupId: string; GroupName: string; DisplayName?: string }>;
  memberships: Array<{ GroupId: string; UserId: string }>;
  calls: Record<string, number>;
}

let emu: Emulator;
let client: CloudIdentityClient;
const extraClients: CloudIdentityClient[] = [];

function mk(extra: Partial<CloudIdentityClientOptions> = {}, url = emu.url): CloudIdentityClient {
  const c = new CloudIdentityClient({
    accessKeyId: DEV_ACCESS_KEY,
    secretAccessKey: DEV_SECRET_KEY,
    endpoint: url,
    baseDelayMs: 1,
    maxDelayMs: 10,
    ...extra,
  });
  extraClients.push(c);
  return c;
}

async function snapshot(url = emu.url): Promise<Snapshot> {
  const res = await fetch(`${url}/_emulator/state`);
  expect(res.status).toBe(200);
  return (await res.json()) as Snapshot;
}

function faults(...rules: FaultRule[]): void {
  emu.setFaults(rules);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject');
}

function outcomes(): ClientObserver & { list: string[] } {
  const list: string[] = [];
  return { list, onAttempt: (e) => list.push(`${e.action}:${e.outcome}`) };
}

beforeAll(async () => {
  emu = await startEmulator({ port: 0 });
  client = mk();
});
beforeEach(() => emu.reset());
afterEach(() => emu.setFaults([]));
afterAll(async () => {
  await Promise.all(extraClients.map((c) => c.close()));
  await emu?.close();
});

describe('all 13 actions round-trip', () => {
  it('creates, reads, lists, updates, links and deletes users and groups', async () => {
    const u = await client.createUser({
      UserName: 'alice',
      DisplayName: 'Alice',
      Email: 'alice@example.com',
    });
    expect(u).toMatchObject({
      UserName: 'alice',
      DisplayName: 'Alice',
      Email: 'alice@example.com',
      Source: 'Manual',
    });
    expect(u.UserId).toBeTruthy();
    expect(u.CreatedTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$/);

    expect(await client.getUser({ UserId: u.UserId })).toMatchObject({ UserId: u.UserId, UserName: 'alice' });

    const listed = await client.listUsers({ UserName: 'ALICE', PageSize: 100 });
    expect(listed).toMatchObject({ PageNumber: 1, PageSize: 100, Total: 1 });
    expect(listed.Users.map((x) => x.UserId)).toEqual([u.UserId]);

    await client.updateUser({ UserId: u.UserId, DisplayName: 'Alice Updated' });
    expect((await client.getUser({ UserId: u.UserId })).DisplayName).toBe('Alice Updated');

    const g = await client.createGroup({ GroupName: 'engineering', JoinType: 'Manual', DisplayName: 'Eng' });
    expect(g).toMatchObject({ GroupName: 'engineering', JoinType: 'Manual', DisplayName: 'Eng' });
    expect(await client.getGroup({ GroupId: g.GroupId })).toMatchObject({ GroupId: g.GroupId });
    const groups = await client.listGroups({ QueryString: 'engin', PageSize: 10 });
    expect(groups.Total).toBe(1);
    expect(groups.Groups[0].GroupId).toBe(g.GroupId);
    await client.updateGroup({ GroupId: g.GroupId, Description: 'all engineers' });
    expect((await client.getGroup({ GroupId: g.GroupId })).Description).toBe('all engineers');

    await client.addUserToGroup({ GroupId: g.GroupId, UserId: u.UserId });
    const members = await client.listGroupMembers({ GroupId: g.GroupId, PageSize: 100 });
    expect(members.Total).toBe(1);
    expect(members.Members[0]).toMatchObject({ UserId: u.UserId, UserName: 'alice' });
    expect((await snapshot()).memberships).toEqual([{ GroupId: g.GroupId, UserId: u.UserId }]);

    await client.removeUserFromGroup({ GroupId: g.GroupId, UserId: u.UserId });
    expect((await client.listGroupMembers({ GroupId: g.GroupId })).Members).toEqual([]);
    await client.deleteGroup({ GroupId: g.GroupId });
    await client.deleteUser({ UserId: u.UserId });

    const s = await snapshot();
    expect(s.users).toEqual([]);
    expect(s.groups).toEqual([]);
    expect(Object.keys(s.calls).sort()).toHaveLength(13);
    expect(Object.values(s.calls).every((n) => n >= 1)).toBe(true);
  });

  it('pages with PageNumber and PageSize', async () => {
    for (let i = 0; i < 5; i++) await client.createUser({ UserName: `pager-${i}` });
    const p1 = await client.listUsers({ QueryString: 'pager', PageNumber: 1, PageSize: 2 });
    const p3 = await client.listUsers({ QueryString: 'pager', PageNumber: 3, PageSize: 2 });
    expect([p1.Total, p1.Users.length, p3.Users.length]).toEqual([5, 2, 1]);
  });
});

describe('transient faults are retried', () => {
  it('recovers from FlowLimitExceeded twice (honouring its Retry-After)', async () => {
    const u = await client.createUser({ UserName: 'throttled' });
    faults({ action: 'GetUser', probability: 1, fault: 'FlowLimitExceeded', times: 2 });
    const obs = outcomes();
    const t0 = Date.now();
    expect((await mk({ observer: obs }).getUser({ UserId: u.UserId })).UserName).toBe('throttled');
    expect(obs.list).toEqual(['GetUser:FlowLimitExceeded', 'GetUser:FlowLimitExceeded', 'GetUser:ok']);
    // The emulator sends Retry-After: 1 with throttling.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect(emu.calls().GetUser).toBe(3);
  });

  it.each(['InternalError', 'ServiceUnavailableTemp'] as const)('recovers from %s', async (fault) => {
    const u = await client.createUser({ UserName: `five-${fault}` });
    faults({ action: 'UpdateUser', probability: 1, fault, times: 2 });
    await client.updateUser({ UserId: u.UserId, DisplayName: 'after 5xx' });
    expect((await client.getUser({ UserId: u.UserId })).DisplayName).toBe('after 5xx');
    expect(emu.calls().UpdateUser).toBe(3);
  });

  it('recovers from ConcurrentException', async () => {
    const u = await client.createUser({ UserName: 'concurrent' });
    const g = await client.createGroup({ GroupName: 'concurrent-g', JoinType: 'Manual' });
    faults({ action: 'AddUserToGroup', probability: 1, fault: 'ConcurrentException', times: 2 });
    await client.addUserToGroup({ GroupId: g.GroupId, UserId: u.UserId });
    expect((await snapshot()).memberships).toEqual([{ GroupId: g.GroupId, UserId: u.UserId }]);
    expect(emu.calls().AddUserToGroup).toBe(3);
  });

  it('recovers from a dropped connection (reset)', async () => {
    faults({ action: 'CreateUser', probability: 1, fault: 'reset', times: 1 });
    const obs = outcomes();
    const u = await mk({ observer: obs }).createUser({ UserName: 'after-reset' });
    expect(obs.list).toEqual(['CreateUser:network', 'CreateUser:ok']);
    const s = await snapshot();
    expect(s.users.map((x) => x.UserId)).toEqual([u.UserId]);
  });

  it('a commitThenReset CreateUser: one user upstream, and the retry answer says an attempt may have committed', async () => {
    faults({ action: 'CreateUser', probability: 1, fault: 'commitThenReset', times: 1 });
    const obs = outcomes();
    const e = await rejection(mk({ observer: obs }).createUser({ UserName: 'Committed', DisplayName: 'C' }));
    // Whether that account is the one the lost attempt made is the caller's decision (a namesake
    // may be someone else's): the client reports, it does not adopt.
    expect((e as VolcengineApiError).code).toBe('UserNameAlreadyExists');
    expect(followedUncertainAttempt(e)).toBe(true);
    const s = await snapshot();
    expect(s.users).toHaveLength(1);
    expect(s.users[0]).toMatchObject({ UserName: 'Committed' });
    expect(obs.list).toEqual(['CreateUser:network', 'CreateUser:UserNameAlreadyExists']);
    expect(s.calls).toMatchObject({ CreateUser: 2 });
    expect(s.calls.ListUsers).toBeUndefined();
  });

  it('a commitThenReset CreateGroup: one group upstream, and the retry answer says an attempt may have committed', async () => {
    faults({ action: 'CreateGroup', probability: 1, fault: 'commitThenReset', times: 1 });
    const e = await rejection(client.createGroup({ GroupName: 'committed-group', JoinType: 'Manual' }));
    expect((e as VolcengineApiError).code).toBe('GroupNameAlreadyExists');
    expect(followedUncertainAttempt(e)).toBe(true);
    const s = await snapshot();
    expect(s.groups.map((x) => x.GroupName)).toEqual(['committed-group']);
    expect(s.calls.ListGroups).toBeUndefined();
  });

  it('commitThenReset on membership and delete mutations still ends in success', async () => {
    const u = await client.createUser({ UserName: 'm1' });
    const g = await client.createGroup({ GroupName: 'mg', JoinType: 'Manual' });
    const once = (action: string): void =>
      faults({ action, probability: 1, fault: 'commitThenReset', times: 1 });

    once('AddUserToGroup');
    await client.addUserToGroup({ GroupId: g.GroupId, UserId: u.UserId });
    expect((await snapshot()).memberships).toHaveLength(1);

    once('RemoveUserFromGroup');
    await client.removeUserFromGroup({ GroupId: g.GroupId, UserId: u.UserId });
    expect((await snapshot()).memberships).toHaveLength(0);

    once('DeleteGroup');
    await client.deleteGroup({ GroupId: g.GroupId });
    once('DeleteUser');
    await client.deleteUser({ UserId: u.UserId });
    const s = await snapshot();
    expect([s.users.length, s.groups.length]).toEqual([0, 0]);
    expect(s.calls).toMatchObject({
      AddUserToGroup: 2,
      RemoveUserFromGroup: 2,
      DeleteGroup: 2,
      DeleteUser: 2,
    });
  });

  it('survives a mix of faults on concurrent creates with exactly one user per name', async () => {
    faults(
      { action: '*', probability: 0.3, fault: 'commitThenReset', times: 4 },
      { action: '*', probability: 0.3, fault: 'reset', times: 3 },
      { action: '*', probability: 0.3, fault: 'FlowLimitExceeded', times: 2 },
      { action: '*', probability: 0.3, fault: 'InternalError', times: 3 },
      { action: '*', probability: 0.3, fault: 'ConcurrentException', times: 3 },
    );
    // 15 faults at most: 16 attempts per call can never all fail.
    const c = mk({ maxAttempts: 16, mutationConcurrency: 4 });
    const names = Array.from({ length: 20 }, (_, i) => `chaos-${i}`);
    const results = await Promise.allSettled(names.map((UserName) => c.createUser({ UserName })));
    const s = await snapshot();
    expect(s.users.map((x) => x.UserName).sort()).toEqual([...names].sort());
    const created = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.UserId] : []));
    for (const r of results) {
      // A create whose committed attempt lost its answer: reported as such, never a second user.
      if (r.status === 'rejected') {
        expect((r.reason as VolcengineApiError).code).toBe('UserNameAlreadyExists');
        expect(followedUncertainAttempt(r.reason)).toBe(true);
      }
    }
    for (const id of created) expect(s.users.some((x) => x.UserId === id)).toBe(true);
  });
});

describe('business errors are not retried', () => {
  it('UserNameAlreadyExists (404)', async () => {
    await client.createUser({ UserName: 'dup' });
    const e = (await rejection(client.createUser({ UserName: 'DUP' }))) as VolcengineApiError;
    expect(e).toBeInstanceOf(VolcengineApiError);
    expect([e.code, e.httpStatus]).toEqual(['UserNameAlreadyExists', 404]);
    expect(e.requestId).toMatch(/^\w+$/);
    expect(emu.calls()).toMatchObject({ CreateUser: 2 });
    expect(emu.calls().ListUsers).toBeUndefined();
  });

  it.each([
    ['UserNotFound', 404, (c: CloudIdentityClient) => c.getUser({ UserId: 'nope' })],
    ['UserGroupNotFound', 404, (c: CloudIdentityClient) => c.deleteGroup({ GroupId: 'nope' })],
    ['InvalidParam', 400, (c: CloudIdentityClient) => c.createUser({ UserName: 'x'.repeat(55) })],
  ])('%s (%i)', async (code, status, run) => {
    const e = (await rejection(run(client))) as VolcengineApiError;
    expect([e.code, e.httpStatus]).toEqual([code, status]);
    expect(Object.values(emu.calls())).toEqual([1]);
  });

  it('UserAlreadyInGroup and UserNotInGroup on a first attempt', async () => {
    const u = await client.createUser({ UserName: 'member' });
    const g = await client.createGroup({ GroupName: 'mgroup', JoinType: 'Manual' });
    await client.addUserToGroup({ GroupId: g.GroupId, UserId: u.UserId });
    const add = (await rejection(
      client.addUserToGroup({ GroupId: g.GroupId, UserId: u.UserId }),
    )) as VolcengineApiError;
    expect([add.code, add.httpStatus]).toEqual(['UserAlreadyInGroup', 409]);
    await client.removeUserFromGroup({ GroupId: g.GroupId, UserId: u.UserId });
    const rm = (await rejection(
      client.removeUserFromGroup({ GroupId: g.GroupId, UserId: u.UserId }),
    )) as VolcengineApiError;
    expect([rm.code, rm.httpStatus]).toEqual(['UserNotInGroup', 404]);
    expect(emu.calls()).toMatchObject({ AddUserToGroup: 2, RemoveUserFromGroup: 2 });
  });

  it('ReachedQuotaLimit (429) and ParamIncludeSensitiveWord', async () => {
    const small = await startEmulator({ port: 0, userQuota: 1, sensitiveWords: ['forbidden'] });
    try {
      const c = mk({}, small.url);
      await c.createUser({ UserName: 'only-one' });
      const q = (await rejection(c.createUser({ UserName: 'second' }))) as VolcengineApiError;
      expect([q.code, q.httpStatus]).toEqual(['ReachedQuotaLimit', 429]);
      const w = (await rejection(c.createUser({ UserName: 'a-forbidden-name' }))) as VolcengineApiError;
      expect(w.code).toBe('ParamIncludeSensitiveWord');
      expect(small.calls()).toEqual({ CreateUser: 3 });
    } finally {
      await small.close();
    }
  });

  it('credential errors (wrong secret, unknown key)', async () => {
    const obs = outcomes();
    const bad = (await rejection(
      mk({ secretAccessKey: 'wrong', observer: obs }).listUsers({}),
    )) as VolcengineApiError;
    expect([bad.code, bad.httpStatus]).toEqual(['SignatureDoesNotMatch', 401]);
    const ak = (await rejection(
      mk({ accessKeyId: 'AKLTunknown', observer: obs }).listUsers({}),
    )) as VolcengineApiError;
    expect([ak.code, ak.httpStatus]).toEqual(['InvalidAccessKey', 401]);
    expect(obs.list).toEqual(['ListUsers:SignatureDoesNotMatch', 'ListUsers:InvalidAccessKey']);
  });

  it('InvalidTimestamp is re-signed once, then fails', async () => {
    const obs = outcomes();
    const skewed = mk({ now: () => new Date(Date.now() - 3_600_000), observer: obs });
    const e = (await rejection(skewed.listUsers({}))) as VolcengineApiError;
    expect([e.code, e.httpStatus]).toEqual(['InvalidTimestamp', 403]);
    expect(obs.list).toEqual(['ListUsers:InvalidTimestamp', 'ListUsers:InvalidTimestamp']);
  });
});

describe('deadline', () => {
  it('fails with kind deadline when the emulator is too slow', async () => {
    faults({ action: 'ListUsers', probability: 1, fault: 'latency', latencyMs: 3_000 });
    const obs = outcomes();
    const t0 = Date.now();
    const e = (await rejection(
      mk({ attemptTimeoutMs: 300, deadlineMs: 800, observer: obs }).listUsers({}),
    )) as VolcengineTransportError;
    expect(e).toBeInstanceOf(VolcengineTransportError);
    expect(e.kind).toBe('deadline');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(790);
    // No attempt waited for the 3 s answer: each ran out its 300 ms, the last one the deadline.
    const timedOut = obs.list.slice(0, -1);
    expect(obs.list).toEqual([...timedOut.map(() => 'ListUsers:timeout'), 'ListUsers:deadline']);
  });

  it('recovers from one slow attempt inside the deadline', async () => {
    faults({ action: 'ListUsers', probability: 1, fault: 'latency', latencyMs: 1_000, times: 1 });
    const obs = outcomes();
    await mk({ attemptTimeoutMs: 300, deadlineMs: 2_000, observer: obs }).listUsers({});
    expect(obs.list).toEqual(['ListUsers:timeout', 'ListUsers:ok']);
  });
});
