import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { ok, rawRequest, withEmulator } from './helpers.js';

let emu: RunningEmulator;
let api: Awaited<ReturnType<typeof withEmulator>>['api'];
beforeAll(async () => {
  ({ emu, api } = await withEmulator());
});
afterAll(() => emu.close());
beforeEach(() => emu.reset());

const control = (method: string, path: string, body?: string) =>
  rawRequest(emu.url, {
    method,
    path: `/_emulator/${path}`,
    ...(body !== undefined ? { body, headers: { 'Content-Type': 'application/json' } } : {}),
  });

describe('GET /_emulator/state', () => {
  it('dumps users, groups, memberships and call counts without signing', async () => {
    const u = await ok(api('CreateUser', { UserName: 'u' }));
    const g = await ok(api('CreateGroup', { GroupName: 'g', JoinType: 'Manual' }));
    await ok(api('AddUserToGroup', { GroupId: g.GroupId, UserId: u.UserId }));
    const r = await control('GET', 'state');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      users: [{ ...u, IdentityType: 'Create' }],
      groups: [g],
      memberships: [{ GroupId: g.GroupId, UserId: u.UserId }],
      calls: { CreateUser: 1, CreateGroup: 1, AddUserToGroup: 1 },
    });
  });

  it('?summary=1 returns counts only', async () => {
    emu.seedUsers(5);
    await ok(api('ListUsers'));
    const r = await control('GET', 'state?summary=1');
    expect(r.json).toEqual({ userCount: 5, groupCount: 0, membershipCount: 0, calls: { ListUsers: 1 } });
  });
});

describe('POST /_emulator/reset', () => {
  it('clears data, faults and call counts', async () => {
    await ok(api('CreateUser', { UserName: 'u' }));
    emu.setFaults([{ action: 'GetUser', probability: 1, fault: 'InternalError' }]);
    const r = await control('POST', 'reset');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ ok: true });
    expect((await control('GET', 'state')).json).toEqual({
      users: [],
      groups: [],
      memberships: [],
      calls: {},
    });
    expect((await control('GET', 'faults')).json).toEqual([]);
    expect(emu.calls()).toEqual({});
  });
});

describe('/_emulator/faults', () => {
  it('PUT installs rules (answering them) and GET lists them', async () => {
    const rules = [
      { action: 'CreateUser', probability: 0.25, fault: 'FlowLimitExceeded', times: 3 },
      { action: '*', probability: 1, fault: 'latency', latencyMs: 5 },
    ];
    const put = await control('PUT', 'faults', JSON.stringify(rules));
    expect(put.status).toBe(200);
    expect(put.json).toEqual(rules);
    expect((await control('GET', 'faults')).json).toEqual(rules);
    // PUT replaces the whole list.
    await control('PUT', 'faults', '[]');
    expect((await control('GET', 'faults')).json).toEqual([]);
  });

  it('the installed rules take effect', async () => {
    await control(
      'PUT',
      'faults',
      JSON.stringify([{ action: 'ListUsers', probability: 1, fault: 'InternalError' }]),
    );
    expect((await api('ListUsers')).status).toBe(500);
  });

  it.each([
    ['not JSON', '{nope', /JSON array/],
    ['not an array', '{"action":"*"}', /expected array/],
    ['probability out of range', '[{"action":"*","probability":2,"fault":"reset"}]', /\[0\]\.probability/],
    ['unknown fault', '[{"action":"*","probability":1,"fault":"explode"}]', /\[0\]\.fault/],
    [
      'unknown action',
      '[{"action":"GetUsr","probability":1,"fault":"reset"}]',
      /\[0\]\.action: must be '\*' or one of/,
    ],
    ['misspelt key', '[{"action":"*","probabilty":1,"fault":"reset"}]', /probabilty|Unrecognized/],
    [
      'latency without latencyMs',
      '[{"action":"*","probability":1,"fault":"latency"}]',
      /latencyMs is required/,
    ],
    ['negative times', '[{"action":"*","probability":1,"fault":"reset","times":-1}]', /times/],
  ])('PUT rejects %s with 400 and a message', async (_name, body, message) => {
    await control('PUT', 'faults', JSON.stringify([{ action: '*', probability: 0, fault: 'reset' }]));
    const r = await control('PUT', 'faults', body);
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(message);
    // The previous rules stay.
    expect((await control('GET', 'faults')).json).toHaveLength(1);
  });
});

describe('control routing', () => {
  it('wrong method → 405 with Allow; unknown endpoint → 404', async () => {
    const r = await control('DELETE', 'faults');
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, PUT');
    expect((await control('GET', 'reset')).status).toBe(405);
    expect((await control('POST', 'state')).status).toBe(405);
    expect((await control('GET', 'nothing')).status).toBe(404);
  });

  it('is not counted as calls', async () => {
    await control('GET', 'state');
    await control('GET', 'faults');
    expect(emu.calls()).toEqual({});
  });
});
