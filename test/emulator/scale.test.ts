// The emulator at 100,000 users. Correctness over HTTP; what each request costs is counted in
// records read from the users table (a count, not a clock: the same on any machine).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ACTIONS } from '../../src/emulator/actions/index.js';
import type { Params } from '../../src/emulator/actions/params.js';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { OrderedTable } from '../../src/emulator/ordered-table.js';
import { EmulatorState, type UserRecord } from '../../src/emulator/state.js';
import { controlGet, fails, ok, withEmulator } from './helpers.js';

const N = 100_000;

let emu: RunningEmulator;
let api: Awaited<ReturnType<typeof withEmulator>>['api'];
beforeAll(async () => {
  ({ emu, api } = await withEmulator({ userQuota: N + 1 }));
  emu.seedUsers(N);
});
afterAll(() => emu.close());

describe('100,000 users', () => {
  it('seeds them and the summary counts them', async () => {
    const summary = await controlGet(emu.url, 'state?summary=1');
    expect(summary.userCount).toBe(N);
    expect((await ok(api('ListUsers', { PageSize: 1 }))).Total).toBe(N);
  });

  it('ListUsers by UserName finds each user', async () => {
    const r = await ok(api('ListUsers', { UserName: 'SEED-USER-77777' }));
    expect(r.Total).toBe(1);
    expect(r.Users[0]).toMatchObject({
      UserName: 'seed-user-77777',
      DisplayName: 'Seed User 77777',
      Email: 'seed-user-77777@example.com',
    });
    expect((await ok(api('GetUser', { UserId: r.Users[0].UserId }))).UserName).toBe('seed-user-77777');
    // That it is an index lookup, whatever the directory size, is counted below.
    for (let i = 1; i <= 200; i++) {
      const found = await ok(api('ListUsers', { UserName: `seed-user-${i * 499}` }));
      expect(found.Users.map((u: { UserName: string }) => u.UserName)).toEqual([`seed-user-${i * 499}`]);
    }
  });

  it('pages to the very end with PageSize 100', async () => {
    const last = await ok(api('ListUsers', { PageSize: 100, PageNumber: 1000 }));
    expect(last.Users).toHaveLength(100);
    expect(last.Users[0].UserName).toBe('seed-user-99901');
    expect(last.Users[99].UserName).toBe('seed-user-100000');
    expect((await ok(api('ListUsers', { PageSize: 100, PageNumber: 1001 }))).Users).toEqual([]);
    const middle = await ok(api('ListUsers', { PageSize: 3, PageNumber: 20_000 }, { method: 'GET' }));
    expect(middle.Users.map((u: { UserName: string }) => u.UserName)).toEqual([
      'seed-user-59998',
      'seed-user-59999',
      'seed-user-60000',
    ]);
  });

  it('deep pages stay correct after deletions', async () => {
    const victim = (await ok(api('ListUsers', { UserName: 'seed-user-2' }))).Users[0];
    await ok(api('DeleteUser', { UserId: victim.UserId }));
    const first = await ok(api('ListUsers', { PageSize: 3 }));
    expect(first.Total).toBe(N - 1);
    expect(first.Users.map((u: { UserName: string }) => u.UserName)).toEqual([
      'seed-user-1',
      'seed-user-3',
      'seed-user-4',
    ]);
    // Each later page starts one user further on; that a page reads only its own users is counted below.
    for (let p = 900; p < 1000; p++) {
      const page = await ok(api('ListUsers', { PageSize: 100, PageNumber: p }));
      expect(page.Users[0].UserName).toBe(`seed-user-${(p - 1) * 100 + 2}`);
    }
  });

  it('QueryString filters scan the directory and still page', async () => {
    const r = await ok(api('ListUsers', { QueryString: 'user 9999', PageSize: 5 }));
    // "Seed User 9999" and "Seed User 99990".."99999"
    expect(r.Total).toBe(11);
    expect(r.Users).toHaveLength(5);
  });

  it('seeding skips taken names and enforces nothing (quota still applies to CreateUser)', async () => {
    emu.seedUsers(2);
    // seed-user-2 was deleted above, so it is reused; the next free one is 100001.
    expect((await ok(api('ListUsers', { UserName: 'seed-user-2' }))).Total).toBe(1);
    expect((await ok(api('ListUsers', { UserName: 'seed-user-100001' }))).Total).toBe(1);
    await fails(api('CreateUser', { UserName: 'one-too-many' }), 429, 'ReachedQuotaLimit');
    emu.seedUsers(3, 'load-');
    expect((await ok(api('ListUsers', { QueryString: 'load-' }))).Total).toBe(3);
  });
});

/** A users table that counts the records it hands out, walked or paged. */
class CountingTable extends OrderedTable<string, UserRecord> {
  handedOut = 0;

  override *values(): IterableIterator<UserRecord> {
    for (const user of super.values()) {
      this.handedOut++;
      yield user;
    }
  }

  override page(offset: number, limit: number): UserRecord[] {
    const users = super.page(offset, limit);
    this.handedOut += users.length;
    return users;
  }
}

class CountingState extends EmulatorState {
  override readonly users = new CountingTable();
}

describe('records read per request, counted (a directory of 10,000)', () => {
  const M = 10_000;
  const state = new CountingState();
  beforeAll(() => {
    for (let i = 1; i <= M; i++) {
      state.createUser({ UserName: `user-${i}`, DisplayName: `User ${i}` }, 0);
    }
  });
  beforeEach(() => {
    state.users.handedOut = 0;
  });

  /** Runs an action as the gateway would and returns its result with the records it read. */
  const run = (action: string, params: Params) => {
    const result = ACTIONS.get(action)!.run({
      state,
      params,
      now: 0,
      userQuota: Number.POSITIVE_INFINITY,
      sensitiveWords: [],
    }) as { Total?: number; Users?: Array<{ UserName: string }> };
    return { result, read: state.users.handedOut };
  };

  it('ListUsers by UserName reads no record from the table: an index lookup', () => {
    const { result, read } = run('ListUsers', { UserName: 'USER-7777' });
    expect(result.Users?.map((u) => u.UserName)).toEqual(['user-7777']);
    expect(read).toBe(0);
  });

  it('a QueryString reads every record (the counter sees a scan)', () => {
    const { result, read } = run('ListUsers', { QueryString: 'user 7777' });
    expect(result.Total).toBe(1);
    expect(read).toBe(M);
  });

  it('a deep page reads only its own records, also after a deletion', () => {
    const victim = state.usersByName.get('user-2')!;
    state.deleteUser(victim);
    const { result, read } = run('ListUsers', { PageSize: 100, PageNumber: 99 });
    expect(result.Users?.[0]?.UserName).toBe('user-9802');
    expect(read).toBe(100);
  });

  it('creating a user (one step of seeding) reads no other record', () => {
    const { read } = run('CreateUser', { UserName: 'newcomer' });
    state.createUser({ UserName: 'seeded' }, 0);
    expect(read).toBe(0);
    expect(state.users.handedOut).toBe(0);
  });
});
