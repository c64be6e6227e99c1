import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningEmulator } from '../../src/emulator/index.js';
import { controlGet, fails, ok, withEmulator } from './helpers.js';

const START = Date.parse('2024-07-22T13:53:54Z');
let clock = START;

let emu: RunningEmulator;
let api: Awaited<ReturnType<typeof withEmulator>>['api'];
beforeAll(async () => {
  ({ emu, api } = await withEmulator({ now: () => clock, sensitiveWords: ['secretword'] }));
});
afterAll(() => emu.close());
beforeEach(() => {
  emu.reset();
  clock = START;
});

const x = (n: number) => 'x'.repeat(n);
const group = (GroupName: string, extra: Record<string, unknown> = {}) =>
  ok(api('CreateGroup', { GroupName, JoinType: 'Manual', ...extra }));
const user = (UserName: string, extra: Record<string, unknown> = {}) =>
  ok(api('CreateUser', { UserName, ...extra }));
const names = (items: { UserName?: string; GroupName?: string }[]) =>
  items.map((i) => i.UserName ?? i.GroupName);

describe('CreateGroup / GetGroup', () => {
  it('creates and reads a group', async () => {
    const g = await group('eng', { DisplayName: 'Engineering', Description: 'all engineers' });
    const expected = {
      GroupId: expect.stringMatching(/^[A-Za-z0-9]{11}$/),
      GroupName: 'eng',
      DisplayName: 'Engineering',
      Description: 'all engineers',
      JoinType: 'Manual',
      Source: 'Manual',
      CreatedTime: '2024-07-22T21:53:54+08:00',
      UpdatedTime: '2024-07-22T21:53:54+08:00',
    };
    expect(g).toEqual(expected);
    expect(await ok(api('GetGroup', { GroupId: g.GroupId }))).toEqual(expected);
    expect(await ok(api('GetGroup', { GroupId: g.GroupId }, { method: 'GET' }))).toEqual(expected);
    expect((await group('auto', { JoinType: 'Auto' })).JoinType).toBe('Auto');
  });

  it('validates GroupName, JoinType and lengths', async () => {
    let r = await fails(api('CreateGroup', { JoinType: 'Manual' }), 400, 'ParamMissing');
    expect(r.json.ResponseMetadata.Error.Message).toBe('Missing parameter GroupName');
    r = await fails(api('CreateGroup', { GroupName: 'g' }), 400, 'ParamMissing');
    expect(r.json.ResponseMetadata.Error.Message).toBe('Missing parameter JoinType');
    await fails(api('CreateGroup', { GroupName: 'g', JoinType: 'manual' }), 400, 'InvalidParam');
    await group(x(63));
    await fails(api('CreateGroup', { GroupName: x(64), JoinType: 'Manual' }), 400, 'InvalidParam');
    await group('dn', { DisplayName: x(64), Description: x(128) });
    await fails(
      api('CreateGroup', { GroupName: 'dn2', JoinType: 'Manual', DisplayName: x(65) }),
      400,
      'InvalidParam',
    );
    await fails(
      api('CreateGroup', { GroupName: 'dn3', JoinType: 'Manual', Description: x(129) }),
      400,
      'InvalidParam',
    );
  });

  it('a duplicate GroupName (any case) → 409 GroupNameAlreadyExists', async () => {
    await group('Ops');
    const r = await fails(
      api('CreateGroup', { GroupName: 'OPS', JoinType: 'Auto' }),
      409,
      'GroupNameAlreadyExists',
    );
    expect(r.json.ResponseMetadata.Error.Message).toBe('Group name already exists');
  });

  it('rejects sensitive words', async () => {
    await fails(
      api('CreateGroup', { GroupName: 'my-SecretWord', JoinType: 'Manual' }),
      400,
      'ParamIncludeSensitiveWord',
    );
    await fails(
      api('CreateGroup', { GroupName: 'ok', JoinType: 'Manual', Description: 'secretword' }),
      400,
      'ParamIncludeSensitiveWord',
    );
  });

  it('unknown GroupId → 404 UserGroupNotFound; missing → ParamMissing', async () => {
    const r = await fails(api('GetGroup', { GroupId: 'AAAAAAAAAAA' }), 404, 'UserGroupNotFound');
    expect(r.json.ResponseMetadata.Error.Message).toBe('User group is not found');
    await fails(api('GetGroup', {}), 400, 'ParamMissing');
  });
});

describe('ListGroups', () => {
  beforeEach(async () => {
    await group('alpha', { DisplayName: 'First team' });
    await group('beta', { JoinType: 'Auto', DisplayName: 'TEAM b' });
    await group('gamma');
  });

  it('lists in creation order with paging', async () => {
    expect(names((await ok(api('ListGroups'))).Groups)).toEqual(['alpha', 'beta', 'gamma']);
    const r = await ok(api('ListGroups', { PageSize: 2, PageNumber: 2 }, { method: 'GET' }));
    expect(r).toMatchObject({ PageNumber: 2, PageSize: 2, Total: 3 });
    expect(names(r.Groups)).toEqual(['gamma']);
    expect((await ok(api('ListGroups', { PageNumber: 3, PageSize: 2 }))).Groups).toEqual([]);
    await fails(api('ListGroups', { PageSize: 101 }), 400, 'InvalidParam');
  });

  it('filters by QueryString (name or display name) and JoinType', async () => {
    expect(names((await ok(api('ListGroups', { QueryString: 'team' }))).Groups)).toEqual(['alpha', 'beta']);
    expect(names((await ok(api('ListGroups', { QueryString: 'AMM' }))).Groups)).toEqual(['gamma']);
    expect(names((await ok(api('ListGroups', { JoinType: 'Auto' }))).Groups)).toEqual(['beta']);
    expect((await ok(api('ListGroups', { JoinType: 'Manual', QueryString: 'team' }))).Total).toBe(1);
    await fails(api('ListGroups', { JoinType: 'Nope' }), 400, 'InvalidParam');
  });
});

describe('UpdateGroup / DeleteGroup', () => {
  it('updates DisplayName and Description, clears with empty strings, ignores GroupName/JoinType', async () => {
    const g = await group('docs', { DisplayName: 'Docs', Description: 'writers' });
    clock += 3000;
    expect(
      await ok(
        api('UpdateGroup', {
          GroupId: g.GroupId,
          DisplayName: 'Documentation',
          GroupName: 'renamed',
          JoinType: 'Auto',
        }),
      ),
    ).toEqual({});
    let got = await ok(api('GetGroup', { GroupId: g.GroupId }));
    expect(got).toMatchObject({
      GroupName: 'docs',
      JoinType: 'Manual',
      DisplayName: 'Documentation',
      Description: 'writers',
    });
    expect(got.UpdatedTime).toBe('2024-07-22T21:53:57+08:00');
    expect(got.CreatedTime).toBe('2024-07-22T21:53:54+08:00');
    await ok(api('UpdateGroup', { GroupId: g.GroupId, Description: '' }));
    got = await ok(api('GetGroup', { GroupId: g.GroupId }));
    expect(got.Description).toBe('');
    expect((await ok(api('ListGroups', { QueryString: 'documentation' }))).Total).toBe(1);
  });

  it('UpdateGroup errors', async () => {
    const g = await group('e');
    await fails(api('UpdateGroup', { DisplayName: 'x' }), 400, 'ParamMissing');
    await fails(api('UpdateGroup', { GroupId: 'AAAAAAAAAAA', DisplayName: 'x' }), 404, 'UserGroupNotFound');
    await fails(api('UpdateGroup', { GroupId: g.GroupId, DisplayName: x(65) }), 400, 'InvalidParam');
    await fails(api('UpdateGroup', { GroupId: g.GroupId, Description: x(129) }), 400, 'InvalidParam');
    await fails(
      api('UpdateGroup', { GroupId: g.GroupId, DisplayName: 'secretWORD' }),
      400,
      'ParamIncludeSensitiveWord',
    );
  });

  it('DeleteGroup: {} for an empty group, 409 while it has members, 404 afterwards', async () => {
    const g = await group('tmp');
    const u = await user('member');
    await ok(api('AddUserToGroup', { GroupId: g.GroupId, UserId: u.UserId }));
    const r = await fails(api('DeleteGroup', { GroupId: g.GroupId }), 409, 'UserGroupDeletionConflict');
    expect(r.json.ResponseMetadata.Error.Message).toMatch(/^Make sure that the user group/);
    await ok(api('RemoveUserFromGroup', { GroupId: g.GroupId, UserId: u.UserId }));
    expect(await ok(api('DeleteGroup', { GroupId: g.GroupId }))).toEqual({});
    await fails(api('DeleteGroup', { GroupId: g.GroupId }), 404, 'UserGroupNotFound');
    await fails(api('DeleteGroup', {}), 400, 'ParamMissing');
    // The name is free again.
    await group('TMP');
  });
});

describe('memberships', () => {
  it('AddUserToGroup / RemoveUserFromGroup with their errors', async () => {
    const g = await group('g');
    const u = await user('u');
    expect(await ok(api('AddUserToGroup', { GroupId: g.GroupId, UserId: u.UserId }))).toEqual({});
    let r = await fails(
      api('AddUserToGroup', { GroupId: g.GroupId, UserId: u.UserId }),
      409,
      'UserAlreadyInGroup',
    );
    expect(r.json.ResponseMetadata.Error.Message).toBe('User is already in the user group');
    await fails(
      api('AddUserToGroup', { GroupId: 'AAAAAAAAAAA', UserId: u.UserId }),
      404,
      'UserGroupNotFound',
    );
    await fails(api('AddUserToGroup', { GroupId: g.GroupId, UserId: 'AAAAAAAAAAA' }), 404, 'UserNotFound');
    // Unknown group is reported before unknown user.
    await fails(
      api('AddUserToGroup', { GroupId: 'AAAAAAAAAAA', UserId: 'BBBBBBBBBBB' }),
      404,
      'UserGroupNotFound',
    );
    r = await fails(api('AddUserToGroup', { GroupId: g.GroupId }), 400, 'ParamMissing');
    expect(r.json.ResponseMetadata.Error.Message).toBe('Missing parameter UserId');
    await fails(api('AddUserToGroup', { UserId: u.UserId }), 400, 'ParamMissing');

    expect(await ok(api('RemoveUserFromGroup', { GroupId: g.GroupId, UserId: u.UserId }))).toEqual({});
    r = await fails(
      api('RemoveUserFromGroup', { GroupId: g.GroupId, UserId: u.UserId }),
      404,
      'UserNotInGroup',
    );
    expect(r.json.ResponseMetadata.Error.Message).toBe('User is not in the user group');
    await fails(
      api('RemoveUserFromGroup', { GroupId: 'AAAAAAAAAAA', UserId: u.UserId }),
      404,
      'UserGroupNotFound',
    );
    await fails(
      api('RemoveUserFromGroup', { GroupId: g.GroupId, UserId: 'AAAAAAAAAAA' }),
      404,
      'UserNotFound',
    );
    await fails(api('RemoveUserFromGroup', { GroupId: g.GroupId }), 400, 'ParamMissing');
  });

  it('ListGroupMembers: join order, member fields, QueryString, paging', async () => {
    const g = await group('team');
    const us = [];
    for (const [n, dn] of [
      ['zed', 'Zed Z'],
      ['amy', 'Amy A'],
      ['bo', 'Bo (amy fan)'],
    ]) {
      us.push(await user(n!, { DisplayName: dn, Email: `${n}@example.com` }));
    }
    for (const [i, u] of [us[0], us[1], us[2]].entries()) {
      clock = START + i * 1000;
      await ok(api('AddUserToGroup', { GroupId: g.GroupId, UserId: u.UserId }));
    }
    const r = await ok(api('ListGroupMembers', { GroupId: g.GroupId }));
    expect(r).toMatchObject({ PageNumber: 1, PageSize: 10, Total: 3 });
    expect(names(r.Members)).toEqual(['zed', 'amy', 'bo']);
    expect(r.Members[1]).toEqual({
      UserId: us[1].UserId,
      UserName: 'amy',
      DisplayName: 'Amy A',
      Description: '',
      Email: 'amy@example.com',
      Phone: '',
      Source: 'Manual',
      IdentityType: 'Create',
      JoinTime: '2024-07-22T21:53:55+08:00',
    });
    expect(
      names((await ok(api('ListGroupMembers', { GroupId: g.GroupId, QueryString: 'AMY' }))).Members),
    ).toEqual(['amy', 'bo']);
    const p2 = await ok(
      api('ListGroupMembers', { GroupId: g.GroupId, PageSize: 2, PageNumber: 2 }, { method: 'GET' }),
    );
    expect(p2).toMatchObject({ PageNumber: 2, PageSize: 2, Total: 3 });
    expect(names(p2.Members)).toEqual(['bo']);
    expect((await ok(api('ListGroupMembers', { GroupId: g.GroupId, PageNumber: 5 }))).Members).toEqual([]);

    // Leaving and re-joining moves the user to the end.
    await ok(api('RemoveUserFromGroup', { GroupId: g.GroupId, UserId: us[0].UserId }));
    await ok(api('AddUserToGroup', { GroupId: g.GroupId, UserId: us[0].UserId }));
    expect(
      names((await ok(api('ListGroupMembers', { GroupId: g.GroupId, PageSize: 1, PageNumber: 3 }))).Members),
    ).toEqual(['zed']);

    // Member data is live: an update to the user shows up.
    await ok(api('UpdateUser', { UserId: us[1].UserId, DisplayName: 'Amy Updated' }));
    const amy = (await ok(api('ListGroupMembers', { GroupId: g.GroupId }))).Members.find(
      (m: { UserName: string }) => m.UserName === 'amy',
    );
    expect(amy.DisplayName).toBe('Amy Updated');
  });

  it('ListGroupMembers errors', async () => {
    const g = await group('g');
    await fails(api('ListGroupMembers', {}), 400, 'ParamMissing');
    await fails(api('ListGroupMembers', { GroupId: 'AAAAAAAAAAA' }), 404, 'UserGroupNotFound');
    await fails(api('ListGroupMembers', { GroupId: g.GroupId, PageSize: 0 }), 400, 'InvalidParam');
  });

  it('DeleteUser removes the user from every group', async () => {
    const g1 = await group('g1');
    const g2 = await group('g2');
    const u = await user('leaver');
    const stay = await user('stayer');
    for (const g of [g1, g2]) {
      await ok(api('AddUserToGroup', { GroupId: g.GroupId, UserId: u.UserId }));
      await ok(api('AddUserToGroup', { GroupId: g.GroupId, UserId: stay.UserId }));
    }
    await ok(api('DeleteUser', { UserId: u.UserId }));
    for (const g of [g1, g2]) {
      expect(names((await ok(api('ListGroupMembers', { GroupId: g.GroupId }))).Members)).toEqual(['stayer']);
    }
    const state = await controlGet(emu.url, 'state');
    expect(state.memberships).toEqual([
      { GroupId: g1.GroupId, UserId: stay.UserId },
      { GroupId: g2.GroupId, UserId: stay.UserId },
    ]);
  });
});
