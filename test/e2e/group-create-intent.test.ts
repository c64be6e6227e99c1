// A group create cut off after CreateGroup committed (its answer lost and the check impossible, or the
// process killed before its record): the group.create intent, committed before CreateGroup, keeps
// the externalId and displayName, and whoever finishes it (the retried POST, the IdP's match by
// displayName, or the reconciler) records the group CloudIdentity made, proved by its CreatedTime.
import { afterEach, describe, expect, it } from 'vitest';
import type { FaultRule } from '../../src/emulator/index.js';
import { GROUP_SCHEMA } from '../../src/scim-model/schemas.js';
import type { CloudIdentityApi } from '../../src/volcengine/types.js';
import { type Harness, type HarnessOptions, startHarness, storeKinds } from '../helpers/harness.js';
import { expectScimError, USER_SCHEMA, uniqueName } from './users-support.js';

const kinds = await storeKinds();

/** CreateGroup commits and its answer never arrives; no ListGroups answers either. */
const cutAfterCreateGroup: FaultRule[] = [
  { action: 'CreateGroup', probability: 1, fault: 'commitThenReset' },
  { action: 'ListGroups', probability: 1, fault: 'InternalError' },
];

/**
 * A harness whose emulator starts failing with `rules` when the bridge sends its next CreateGroup
 * (the create's name check before it still answers).
 */
async function harnessFailingFromCreateGroup(options: HarnessOptions = {}) {
  const armed: { rules: FaultRule[] | null } = { rules: null };
  let harness: Harness | undefined;
  const wrapApi = (api: CloudIdentityApi): CloudIdentityApi =>
    new Proxy(api, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (prop === 'createGroup') {
          return (...args: Parameters<CloudIdentityApi['createGroup']>) => {
            if (armed.rules) harness?.emulator.setFaults(armed.rules);
            armed.rules = null;
            return target.createGroup(...args);
          };
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  harness = await startHarness({ ...options, wrapApi });
  return { harness, arm: (rules: FaultRule[]) => (armed.rules = rules) };
}

const groupBody = (displayName: string, externalId: string, members: string[] = []) => ({
  schemas: [GROUP_SCHEMA],
  displayName,
  externalId,
  ...(members.length > 0 ? { members: members.map((value) => ({ value })) } : {}),
});

describe.each(kinds)('group create cut off after CreateGroup (%s store)', (store) => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  /** POST that CloudIdentity carries out but whose outcome the bridge cannot learn. */
  async function cutOffCreate(
    displayName: string,
    externalId: string,
    options: HarnessOptions & { members?: number } = {},
  ) {
    const started = await harnessFailingFromCreateGroup({ store, ...options });
    h = started.harness;
    const harness = h;
    const members: string[] = [];
    for (let i = 0; i < (options.members ?? 0); i++) {
      const user = await harness.http
        .post('/scim/v2/Users')
        .send({ schemas: [USER_SCHEMA], userName: `${uniqueName(`member${i}`, 'u')}@example.com` });
      expect(user.status, user.text).toBe(201);
      members.push(user.body.id);
    }
    started.arm(cutAfterCreateGroup);
    const res = await harness.http.post('/scim/v2/Groups').send(groupBody(displayName, externalId, members));
    harness.emulator.setFaults([]);
    expect(res.status, res.text).toBeGreaterThanOrEqual(500);
    const groups = (await harness.upstream()).groups.filter((g) => g.DisplayName === displayName);
    expect(groups, 'CloudIdentity made the group').toHaveLength(1);
    expect(await harness.store.findGroupByDisplayName(displayName)).toBeNull();
    expect(await harness.store.countIntents(), 'the create is left to finish').toBe(1);
    const membersUpstream = async () =>
      (await harness.upstream()).memberships
        .filter((m) => m.GroupId === groups[0].GroupId)
        .map((m) => m.UserId)
        .sort();
    expect(await membersUpstream(), 'no member was added yet').toEqual([]);
    const records = await harness.store.getUsers(members);
    const memberUserIds = members.map((id) => records.get(id)?.upstreamUserId).sort();
    return { harness, made: groups[0], members, membersUpstream, memberUserIds };
  }

  it('the reconciler adds the members the cut-off create asked for, and the trail names them', async () => {
    const displayName = uniqueName('cut-members', 'g');
    const cut = await cutOffCreate(displayName, 'ext-members', { members: 2 });
    const { harness: h, made, members } = cut;
    await h.settle();
    expect(await h.store.findGroupByDisplayName(displayName)).toMatchObject({ scimId: made.GroupId });
    expect(await cut.membersUpstream()).toEqual(cut.memberUserIds);
    expect((await h.store.membersOfGroup(made.GroupId)).sort()).toEqual([...members].sort());
    const read = await h.http.get(`/scim/v2/Groups/${made.GroupId}`);
    expect(read.body.members.map((m: { value: string }) => m.value).sort()).toEqual([...members].sort());
    const trail = await h.store.listAudit({ resource: made.GroupId, limit: 20 });
    const added = trail
      .flatMap((r) => r.changes?.members?.added ?? [])
      .map((m) => (typeof m === 'string' ? m : m.id));
    expect(added.sort()).toEqual([...members].sort());
    expect(await h.store.countIntents()).toBe(0);
  });

  it('the retried POST with members answers 201 once they are in the group', async () => {
    const displayName = uniqueName('cut-retry-members', 'g');
    const cut = await cutOffCreate(displayName, 'ext-rm', { members: 2 });
    const { harness: h, made, members } = cut;
    const retry = await h.http.post('/scim/v2/Groups').send(groupBody(displayName, 'ext-rm', members));
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body).toMatchObject({ id: made.GroupId, displayName, externalId: 'ext-rm' });
    expect(await cut.membersUpstream()).toEqual(cut.memberUserIds);
    expect((await h.upstream()).groups.filter((g) => g.DisplayName === displayName)).toHaveLength(1);
    expect(await h.store.countIntents()).toBe(0);
  });

  it('the reconciler records the group with its externalId', async () => {
    const displayName = uniqueName('cut-reconciler', 'g');
    const { harness: h, made } = await cutOffCreate(displayName, 'ext-reconciler');
    await h.settle();
    const record = await h.store.findGroupByDisplayName(displayName);
    expect(record).toMatchObject({ scimId: made.GroupId, externalId: 'ext-reconciler' });
    const read = await h.http.get(`/scim/v2/Groups/${made.GroupId}`);
    expect(read.body.externalId).toBe('ext-reconciler');
    expect(await h.store.countIntents()).toBe(0);
  });

  it("the IdP's match by displayName finds the group with its externalId", async () => {
    const displayName = uniqueName('cut-match', 'g');
    const { harness: h, made } = await cutOffCreate(displayName, 'ext-match');
    const match = await h.http.get(
      `/scim/v2/Groups?excludedAttributes=members&filter=${encodeURIComponent(`displayName eq "${displayName}"`)}`,
    );
    expect(match.status, match.text).toBe(200);
    expect(match.body.totalResults).toBe(1);
    expect(match.body.Resources[0]).toMatchObject({ id: made.GroupId, externalId: 'ext-match' });
    expect(await h.store.countIntents()).toBe(0);
  });

  it('the retried POST answers 201 with the group it made, externalId kept', async () => {
    const displayName = uniqueName('cut-retry', 'g');
    const { harness: h, made } = await cutOffCreate(displayName, 'ext-retry');
    const retry = await h.http.post('/scim/v2/Groups').send(groupBody(displayName, 'ext-retry'));
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body).toMatchObject({ id: made.GroupId, displayName, externalId: 'ext-retry' });
    expect((await h.upstream()).groups.filter((g) => g.DisplayName === displayName)).toHaveLength(1);
    expect(await h.store.countIntents()).toBe(0);
  });

  it('a group made in the console before the create is not adopted', async () => {
    let skewMs = 0;
    const started = await harnessFailingFromCreateGroup({
      store,
      emulator: { now: () => Date.now() - skewMs },
    });
    h = started.harness;
    const displayName = uniqueName('cut-namesake', 'g');
    // The create's CreateGroup may have committed (5xx every time) and nothing can be checked.
    started.arm([
      { action: 'CreateGroup', probability: 1, fault: 'InternalError' },
      { action: 'ListGroups', probability: 1, fault: 'InternalError' },
    ]);
    const res = await h.http.post('/scim/v2/Groups').send(groupBody(displayName, 'ext-namesake'));
    h.emulator.setFaults([]);
    expect(res.status, res.text).toBeGreaterThanOrEqual(500);
    // Meanwhile someone makes a group of that name in the console, dated before the create started.
    skewMs = 10_000;
    const stranger = await h.client.createGroup({
      GroupName: `console-${Date.now()}`,
      JoinType: 'Manual',
      DisplayName: displayName,
    });
    skewMs = 0;
    await h.settle();
    expect(await h.store.countIntents()).toBe(0);
    expect(await h.store.findGroupByDisplayName(displayName)).toBeNull();
    const retry = await h.http.post('/scim/v2/Groups').send(groupBody(displayName, 'ext-namesake'));
    expectScimError(retry, 409, 'uniqueness');
    const read = await h.http.get(`/scim/v2/Groups/${stranger.GroupId}`);
    expect(read.body.externalId).toBeUndefined();
  });
});
