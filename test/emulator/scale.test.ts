import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { controlGet, fails, ok, withEmulator } from './helpers.js';

const N = 100_000;

let emu: RunningEmulator;
let api: Awaited<ReturnType<typeof withEmulator>>['api'];
let seedMs = 0;
beforeAll(async () => {
  ({ emu, api } = await withEmulator({ userQuota: N + 1 }));
  const t0 = performance.now();
  emu.seedUsers(N);
  seedMs = performance.now() - t0;
});
afterAll(() => emu.close());

describe('100,000 users', () => {
  it('seeds quickly and the summary counts them', async () => {
    expect(seedMs).toBeLessThan(5000);
    const summary = await controlGet(emu.url, 'state?summary=1');
    expect(summary.userCount).toBe(N);
    expect((await ok(api('ListUsers', { PageSize: 1 }))).Total).toBe(N);
  });

  it('ListUsers by UserName is an index lookup', async () => {
    const r = await ok(api('ListUsers', { UserName: 'SEED-USER-77777' }));
    expect(r.Total).toBe(1);
    expect(r.Users[0]).toMatchObject({
      UserName: 'seed-user-77777',
      DisplayName: 'Seed User 77777',
      Email: 'seed-user-77777@example.com',
    });
    expect((await ok(api('GetUser', { UserId: r.Users[0].UserId }))).UserName).toBe('seed-user-77777');
    // 200 lookups: generous bound, but a linear scan per request (~100k comparisons) would be far slower.
    const t0 = performance.now();
    for (let i = 1; i <= 200; i++) await ok(api('ListUsers', { UserName: `seed-user-${i * 499}` }));
    expect(performance.now() - t0).toBeLessThan(10_000);
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

  it('deep pages stay cheap and correct after deletions', async () => {
    const victim = (await ok(api('ListUsers', { UserName: 'seed-user-2' }))).Users[0];
    await ok(api('DeleteUser', { UserId: victim.UserId }));
    const first = await ok(api('ListUsers', { PageSize: 3 }));
    expect(first.Total).toBe(N - 1);
    expect(first.Users.map((u: { UserName: string }) => u.UserName)).toEqual([
      'seed-user-1',
      'seed-user-3',
      'seed-user-4',
    ]);
    const t0 = performance.now();
    for (let p = 900; p < 1000; p++) await ok(api('ListUsers', { PageSize: 100, PageNumber: p }));
    expect(performance.now() - t0).toBeLessThan(10_000);
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
