import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { fails, ok, withEmulator } from './helpers.js';

const START = Date.parse('2024-07-22T13:53:54Z'); // 21:53:54 in UTC+8, as in the doc example
let clock = START;

let emu: RunningEmulator;
let api: Awaited<ReturnType<typeof withEmulator>>['api'];
beforeAll(async () => {
  ({ emu, api } = await withEmulator({ now: () => clock, sensitiveWords: ['Forbidden', '禁词'] }));
});
afterAll(() => emu.close());
beforeEach(() => {
  emu.reset();
  clock = START;
});

const create = (UserName: string, extra: Record<string, unknown> = {}) =>
  ok(api('CreateUser', { UserName, ...extra }));
const x = (n: number, ch = 'x') => ch.repeat(n);

describe('CreateUser', () => {
  it('returns the user without IdentityType, Source Manual, +08:00 timestamps and an 11-char id', async () => {
    const user = await create('alice', {
      DisplayName: 'Alice',
      Description: 'd',
      Email: 'alice@example.com',
      Phone: '+8613800000000',
    });
    expect(user).toEqual({
      UserId: expect.stringMatching(/^[A-Za-z0-9]{11}$/),
      UserName: 'alice',
      DisplayName: 'Alice',
      Description: 'd',
      Email: 'alice@example.com',
      Phone: '+8613800000000',
      Source: 'Manual',
      CreatedTime: '2024-07-22T21:53:54+08:00',
      UpdatedTime: '2024-07-22T21:53:54+08:00',
    });
  });

  it('GetUser returns IdentityType Create', async () => {
    const { UserId } = await create('bob');
    const user = await ok(api('GetUser', { UserId }));
    expect(user).toMatchObject({
      UserId,
      UserName: 'bob',
      IdentityType: 'Create',
      Source: 'Manual',
      DisplayName: '',
    });
  });

  it('gives every user a distinct id', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) ids.add((await create(`u${i}`)).UserId);
    expect(ids.size).toBe(50);
  });

  it('a missing or empty UserName is InvalidParam (CreateUser has no ParamMissing)', async () => {
    let r = await fails(api('CreateUser', {}), 400, 'InvalidParam');
    expect(r.json.ResponseMetadata.Error.Message).toBe('The parameter UserName[] is invalid');
    r = await fails(api('CreateUser', { UserName: '' }), 400, 'InvalidParam');
    await fails(api('CreateUser', { UserName: 42 }), 400, 'InvalidParam');
  });

  it.each([
    ['UserName', 54],
    ['DisplayName', 64],
    ['Description', 255],
    ['Email', 128],
    ['Phone', 20],
  ])('%s: %i characters ok, one more is InvalidParam', async (field, max) => {
    const base = { UserName: 'limits' };
    await ok(api('CreateUser', { ...base, [field]: x(max) }));
    emu.reset();
    const r = await fails(api('CreateUser', { ...base, [field]: x(max + 1) }), 400, 'InvalidParam');
    const shown = max + 1 > 80 ? `${x(80)}...` : x(max + 1);
    expect(r.json.ResponseMetadata.Error.Message).toBe(`The parameter ${field}[${shown}] is invalid`);
  });

  it('counts characters, not bytes (54 CJK characters is a valid UserName)', async () => {
    await create(x(54, '张'));
    await create(x(27, '😀')); // 27 code points, 54 UTF-16 units
    await fails(api('CreateUser', { UserName: x(55, '张') }), 400, 'InvalidParam');
  });

  it('a duplicate UserName is 404 UserNameAlreadyExists, case-insensitively', async () => {
    await create('Carol');
    for (const name of ['Carol', 'carol', 'CAROL']) {
      const r = await fails(api('CreateUser', { UserName: name }), 404, 'UserNameAlreadyExists');
      expect(r.json.ResponseMetadata.Error.Message).toBe('User name already exists');
    }
  });

  it('rejects sensitive words in any string field, case-insensitively', async () => {
    for (const field of ['UserName', 'DisplayName', 'Description', 'Email', 'Phone']) {
      const r = await fails(
        api('CreateUser', {
          UserName: 'clean',
          [field]: field === 'UserName' ? 'a-FORBIDDEN-b' : 'xforbiddenx',
        }),
        400,
        'ParamIncludeSensitiveWord',
      );
      expect(r.json.ResponseMetadata.Error.Message).toBe(`The parameter ${field} Include sensitive Word`);
    }
    await fails(
      api('CreateUser', { UserName: 'cjk', DisplayName: '有禁词的' }),
      400,
      'ParamIncludeSensitiveWord',
    );
    expect((await ok(api('ListUsers'))).Total).toBe(0);
  });
});

describe('quota', () => {
  it('CreateUser beyond userQuota is 429 ReachedQuotaLimit; a delete frees a slot', async () => {
    const q = await withEmulator({ userQuota: 2 });
    try {
      const a = await ok(q.api('CreateUser', { UserName: 'a' }));
      await ok(q.api('CreateUser', { UserName: 'b' }));
      const r = await fails(q.api('CreateUser', { UserName: 'c' }), 429, 'ReachedQuotaLimit');
      expect(r.json.ResponseMetadata.Error.Message).toBe('The count of user is exceeded quota limit');
      // A duplicate name is still reported as a duplicate at the quota.
      await fails(q.api('CreateUser', { UserName: 'a' }), 404, 'UserNameAlreadyExists');
      await ok(q.api('DeleteUser', { UserId: a.UserId }));
      await ok(q.api('CreateUser', { UserName: 'c' }));
    } finally {
      await q.emu.close();
    }
  });

  it('userQuota 0 refuses every CreateUser', async () => {
    const q = await withEmulator({ userQuota: 0 });
    try {
      await fails(q.api('CreateUser', { UserName: 'a' }), 429, 'ReachedQuotaLimit');
    } finally {
      await q.emu.close();
    }
  });
});

describe('GetUser / DeleteUser', () => {
  it('unknown UserId → 404 UserNotFound; missing → 400 ParamMissing', async () => {
    const r = await fails(api('GetUser', { UserId: 'AAAAAAAAAAA' }), 404, 'UserNotFound');
    expect(r.json.ResponseMetadata.Error.Message).toBe('User is not found');
    const m = await fails(api('GetUser', {}), 400, 'ParamMissing');
    expect(m.json.ResponseMetadata.Error.Message).toBe('Missing parameter UserId');
    await fails(api('GetUser', { UserId: '' }), 400, 'ParamMissing');
    await fails(api('DeleteUser', {}), 400, 'ParamMissing');
    await fails(api('UpdateUser', { DisplayName: 'x' }), 400, 'ParamMissing');
  });

  it('DeleteUser answers {}, then the user is gone and its name is free', async () => {
    const { UserId } = await create('dave');
    expect(await ok(api('DeleteUser', { UserId }))).toEqual({});
    await fails(api('GetUser', { UserId }), 404, 'UserNotFound');
    await fails(api('DeleteUser', { UserId }), 404, 'UserNotFound');
    const again = await create('DAVE');
    expect(again.UserId).not.toBe(UserId);
  });
});

describe('UpdateUser', () => {
  it('changes given fields, keeps absent ones, clears empty ones and bumps UpdatedTime', async () => {
    const u = await create('erin', {
      DisplayName: 'Erin',
      Email: 'e@example.com',
      Phone: '123',
      Description: 'keep',
    });
    clock += 65_000;
    expect(
      await ok(api('UpdateUser', { UserId: u.UserId, DisplayName: 'Erin E.', Email: '', Phone: '456' })),
    ).toEqual({});
    const got = await ok(api('GetUser', { UserId: u.UserId }));
    expect(got).toMatchObject({
      UserName: 'erin',
      DisplayName: 'Erin E.',
      Email: '',
      Phone: '456',
      Description: 'keep',
      CreatedTime: '2024-07-22T21:53:54+08:00',
      UpdatedTime: '2024-07-22T21:54:59+08:00',
    });
  });

  it('bumps UpdatedTime even when nothing else changes', async () => {
    const u = await create('idle');
    clock += 1000;
    await ok(api('UpdateUser', { UserId: u.UserId }));
    expect((await ok(api('GetUser', { UserId: u.UserId }))).UpdatedTime).toBe('2024-07-22T21:53:55+08:00');
  });

  it('renames; the old name is freed and the new one indexed', async () => {
    const u = await create('frank');
    await ok(api('UpdateUser', { UserId: u.UserId, UserName: 'franklin' }));
    expect((await ok(api('ListUsers', { UserName: 'FRANKLIN' }))).Users[0].UserId).toBe(u.UserId);
    expect((await ok(api('ListUsers', { UserName: 'frank' }))).Total).toBe(0);
    await create('frank');
  });

  it('a rename onto another user (any case) is 404 UserNameAlreadyExists; own case change is fine', async () => {
    const a = await create('gina');
    await create('hank');
    await fails(api('UpdateUser', { UserId: a.UserId, UserName: 'HANK' }), 404, 'UserNameAlreadyExists');
    await ok(api('UpdateUser', { UserId: a.UserId, UserName: 'Gina' }));
    expect((await ok(api('GetUser', { UserId: a.UserId }))).UserName).toBe('Gina');
  });

  it('validates like CreateUser: limits, empty UserName, sensitive words', async () => {
    const u = await create('ivan');
    await fails(api('UpdateUser', { UserId: u.UserId, UserName: '' }), 400, 'InvalidParam');
    await fails(api('UpdateUser', { UserId: u.UserId, UserName: x(55) }), 400, 'InvalidParam');
    await fails(api('UpdateUser', { UserId: u.UserId, DisplayName: x(65) }), 400, 'InvalidParam');
    await fails(
      api('UpdateUser', { UserId: u.UserId, Description: 'has Forbidden' }),
      400,
      'ParamIncludeSensitiveWord',
    );
    await fails(api('UpdateUser', { UserId: 'AAAAAAAAAAA', DisplayName: 'x' }), 404, 'UserNotFound');
    expect((await ok(api('GetUser', { UserId: u.UserId }))).Description).toBe('');
  });
});

describe('ListUsers filters', () => {
  beforeEach(async () => {
    await create('alice', { DisplayName: 'Alice Liddell' });
    await create('alice2', { DisplayName: 'Second' });
    await create('Bob', { DisplayName: 'Bobby ALICE-fan' });
    await create('carol');
  });

  it('UserName is an exact, case-insensitive match', async () => {
    let r = await ok(api('ListUsers', { UserName: 'ALICE' }));
    expect(r.Total).toBe(1);
    expect(r.Users.map((u: { UserName: string }) => u.UserName)).toEqual(['alice']);
    r = await ok(api('ListUsers', { UserName: 'ali' }));
    expect(r).toEqual({ PageNumber: 1, PageSize: 10, Total: 0, Users: [] });
  });

  it('QueryString is a case-insensitive substring of UserName or DisplayName', async () => {
    const r = await ok(api('ListUsers', { QueryString: 'alice' }));
    expect(r.Users.map((u: { UserName: string }) => u.UserName)).toEqual(['alice', 'alice2', 'Bob']);
    expect((await ok(api('ListUsers', { QueryString: 'LIDD' }))).Total).toBe(1);
    expect((await ok(api('ListUsers', { QueryString: 'nobody' }))).Total).toBe(0);
  });

  it('Source filters; an unknown Source is InvalidParam', async () => {
    expect((await ok(api('ListUsers', { Source: 'Manual' }))).Total).toBe(4);
    expect((await ok(api('ListUsers', { Source: 'Sync' }))).Total).toBe(0);
    await fails(api('ListUsers', { Source: 'Other' }), 400, 'InvalidParam');
  });

  it('filters combine with AND', async () => {
    expect((await ok(api('ListUsers', { UserName: 'bob', QueryString: 'fan' }))).Total).toBe(1);
    expect((await ok(api('ListUsers', { UserName: 'bob', QueryString: 'zzz' }))).Total).toBe(0);
    expect((await ok(api('ListUsers', { UserName: 'bob', Source: 'Sync' }))).Total).toBe(0);
    expect(
      (await ok(api('ListUsers', { QueryString: 'alice', Source: 'Manual', PageSize: 2 }))).Users,
    ).toHaveLength(2);
  });

  it('works as GET with query parameters', async () => {
    const r = await ok(
      api(
        'ListUsers',
        { QueryString: 'Alice', PageSize: 2, PageNumber: 2 },
        { method: 'GET', style: 'node' },
      ),
    );
    expect(r).toMatchObject({ PageNumber: 2, PageSize: 2, Total: 3 });
    expect(r.Users.map((u: { UserName: string }) => u.UserName)).toEqual(['Bob']);
    expect(r.Users[0].IdentityType).toBe('Create');
  });
});

describe('ListUsers paging', () => {
  const names = Array.from({ length: 25 }, (_, i) => `p${String(i).padStart(2, '0')}`);
  beforeEach(async () => {
    for (const n of names) await create(n);
  });
  const page = async (params: Record<string, unknown>) => {
    const r = await ok(api('ListUsers', params));
    return { ...r, names: r.Users.map((u: { UserName: string }) => u.UserName) };
  };

  it('defaults to PageNumber 1, PageSize 10, in creation order', async () => {
    const r = await page({});
    expect(r).toMatchObject({ PageNumber: 1, PageSize: 10, Total: 25 });
    expect(r.names).toEqual(names.slice(0, 10));
  });

  it('PageSize 1 and 100', async () => {
    expect((await page({ PageSize: 1, PageNumber: 7 })).names).toEqual(['p06']);
    const all = await page({ PageSize: 100 });
    expect(all.names).toEqual(names);
    expect(all.PageSize).toBe(100);
  });

  it('last partial page and a page past the end', async () => {
    expect((await page({ PageNumber: 3 })).names).toEqual(names.slice(20));
    const past = await page({ PageNumber: 4 });
    expect(past).toMatchObject({ PageNumber: 4, PageSize: 10, Total: 25, Users: [] });
    expect((await page({ PageNumber: 1_000_000 })).Users).toEqual([]);
  });

  it.each([
    ['PageSize', 0],
    ['PageSize', 101],
    ['PageSize', -1],
    ['PageSize', 1.5],
    ['PageSize', '1.5'],
    ['PageSize', 'ten'],
    ['PageSize', ''],
    ['PageSize', true],
    ['PageNumber', 0],
    ['PageNumber', -3],
    ['PageNumber', 2.5],
  ])('%s = %j → 400 InvalidParam', async (field, value) => {
    const r = await fails(api('ListUsers', { [field]: value }), 400, 'InvalidParam');
    expect(r.json.ResponseMetadata.Error.Message).toMatch(new RegExp(`^The parameter ${field}\\[`));
  });

  it.each(['0', '101', '-1', '1e1', 'abc'])('GET PageSize=%s → 400 InvalidParam', async (value) => {
    await fails(api('ListUsers', { PageSize: value }, { method: 'GET' }), 400, 'InvalidParam');
  });

  it('stays in creation order after deletions and new users', async () => {
    const first = await page({ PageSize: 3 });
    const ids = (await ok(api('ListUsers', { PageSize: 3 }))).Users.map((u: { UserId: string }) => u.UserId);
    await ok(api('DeleteUser', { UserId: ids[1] }));
    await create('zz-new');
    const r = await page({ PageSize: 100 });
    expect(r.Total).toBe(25);
    expect(r.names).toEqual([...names.filter((n) => n !== first.names[1]), 'zz-new']);
    expect((await page({ PageSize: 2, PageNumber: 1 })).names).toEqual(['p00', 'p02']);
  });
});
