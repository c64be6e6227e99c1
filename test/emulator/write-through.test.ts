import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultInjector } from '../../src/emulator/faults.js';
import { Authenticator } from '../../src/emulator/gateway/auth.js';
import { DEV_ACCESS_KEY, DEV_SECRET_KEY } from '../../src/emulator/index.js';
import { createRequestListener } from '../../src/emulator/server.js';
import { EmulatorState, type StateSink } from '../../src/emulator/state.js';
import { call, fails, ok } from './helpers.js';

// The state file is written before memory changes: a failed write must leave the emulator exactly
// as it was and answer an error, never a half-applied change or a hung request.

/** A sink that records calls and, while `failing`, throws like a full disk would. */
function flakySink(): StateSink & { failing: boolean; calls: string[] } {
  const sink = {
    failing: false,
    calls: [] as string[],
  } as StateSink & { failing: boolean; calls: string[] };
  for (const name of [
    'insertUser',
    'updateUser',
    'deleteUser',
    'insertGroup',
    'updateGroup',
    'deleteGroup',
    'addMember',
    'removeMember',
    'clear',
  ] as const) {
    sink[name] = () => {
      sink.calls.push(name);
      if (sink.failing) throw new Error('SQLITE_FULL: database or disk is full');
    };
  }
  sink.batch = (fn) => fn();
  return sink;
}

function snapshot(state: EmulatorState) {
  return {
    users: [...state.users.values()].map((u) => ({ ...u, groups: [...(u.groups ?? [])] })),
    byName: [...state.usersByName.keys()],
    groups: [...state.groups.values()].map((g) => ({
      ...g,
      members: [...g.members.values()].map((m) => [m.user.UserId, m.JoinTime]),
    })),
    groupsByName: [...state.groupsByName.keys()],
    membershipCount: state.membershipCount,
  };
}

describe('EmulatorState write-through', () => {
  it('every mutation calls the sink once, and a failing sink leaves memory untouched', () => {
    const state = new EmulatorState();
    const sink = flakySink();
    state.sink = sink;
    const u = state.createUser({ UserName: 'u', DisplayName: 'U' }, 0);
    const v = state.createUser({ UserName: 'v' }, 0);
    const g = state.createGroup({ GroupName: 'g', JoinType: 'Manual' }, 0);
    const h = state.createGroup({ GroupName: 'h', JoinType: 'Manual' }, 0);
    state.addMember(g, u, 0);
    expect(sink.calls).toEqual(['insertUser', 'insertUser', 'insertGroup', 'insertGroup', 'addMember']);

    sink.failing = true;
    sink.calls = [];
    const before = snapshot(state);
    const attempts: [string, () => unknown][] = [
      ['createUser', () => state.createUser({ UserName: 'w' }, 5000)],
      ['updateUser', () => state.updateUser(u, { UserName: 'renamed', DisplayName: 'R' }, 5000)],
      ['deleteUser', () => state.deleteUser(u)],
      ['createGroup', () => state.createGroup({ GroupName: 'k', JoinType: 'Auto' }, 5000)],
      ['updateGroup', () => state.updateGroup(g, { DisplayName: 'G2' }, 5000)],
      ['deleteGroup', () => state.deleteGroup(h)],
      ['addMember', () => state.addMember(g, v, 5000)],
      ['removeMember', () => state.removeMember(g, u)],
      ['clear', () => state.clear()],
    ];
    for (const [name, attempt] of attempts) {
      expect(attempt, name).toThrow('SQLITE_FULL');
      expect(snapshot(state), name).toEqual(before);
    }
    expect(sink.calls).toEqual([
      'insertUser',
      'updateUser',
      'deleteUser',
      'insertGroup',
      'updateGroup',
      'deleteGroup',
      'addMember',
      'removeMember',
      'clear',
    ]);
    // Removing a non-member is a no-op that writes nothing.
    sink.calls = [];
    state.removeMember(g, v);
    expect(sink.calls).toEqual([]);
  });

  it('a bulk batch whose transaction fails leaves none of its users in memory', () => {
    const state = new EmulatorState();
    const sink = flakySink();
    state.sink = sink;
    state.createUser({ UserName: 'before' }, 0);
    const before = snapshot(state);
    // The fourth insert fails: the file rolls the whole batch back, so must memory.
    let inserts = 0;
    sink.insertUser = () => {
      if (++inserts === 4) throw new Error('SQLITE_FULL: database or disk is full');
    };
    expect(() =>
      state.batch(() => {
        for (let i = 0; i < 10; i++) state.createUser({ UserName: `bulk-${i}` }, 0);
      }),
    ).toThrow('SQLITE_FULL');
    expect(snapshot(state)).toEqual(before);
    expect(state.usersByName.has('bulk-0')).toBe(false);
    // A later batch works and is not confused by the failed one.
    inserts = 100;
    state.batch(() => {
      state.createUser({ UserName: 'bulk-0' }, 0);
    });
    expect([...state.users.values()].map((u) => u.UserName)).toEqual(['before', 'bulk-0']);
  });
});

describe('a failed state-file write over the wire', () => {
  const state = new EmulatorState();
  const sink = flakySink();
  state.sink = sink;
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer(
      createRequestListener({
        state,
        faults: new FaultInjector(),
        calls: new Map(),
        reset: () => state.clear(),
        auth: new Authenticator({
          accessKeyId: DEV_ACCESS_KEY,
          secretAccessKey: DEV_SECRET_KEY,
          region: 'cn-beijing',
          maxSkewSeconds: 900,
          now: Date.now,
        }),
        region: 'cn-beijing',
        latencyMs: 0,
        userQuota: Number.POSITIVE_INFINITY,
        sensitiveWords: [],
        now: Date.now,
        logger: pino({ level: 'silent' }),
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('is answered with InternalError (not a hung request) and changes nothing', async () => {
    const u = await ok(call(url, 'CreateUser', { UserName: 'kept' }));
    sink.failing = true;
    const r = await fails(call(url, 'CreateUser', { UserName: 'lost' }), 500, 'InternalError');
    expect(r.json.ResponseMetadata.Error.Message).toContain('disk is full');
    await fails(call(url, 'UpdateUser', { UserId: u.UserId, UserName: 'renamed' }), 500, 'InternalError');
    sink.failing = false;
    const list = await ok(call(url, 'ListUsers'));
    expect(list.Users.map((x: { UserName: string }) => x.UserName)).toEqual(['kept']);
    await ok(call(url, 'CreateUser', { UserName: 'lost' }));
  });
});
