import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  displayNameOf,
  FALLBACK_GROUP_NAME,
  GROUP_NAME_MAX,
  type GroupView,
  groupNameFor,
  groupsOfUsersForScim,
  groupVersion,
  toScimGroup,
  withSuffix,
} from '../../src/directory/group-mapping.js';
import type { GroupRecord } from '../../src/store/types.js';
import type { CloudIdentityGroup } from '../../src/volcengine/types.js';
import {
  openTestStore,
  type StoreKind,
  startUpstream,
  storeKinds,
  testContext,
  type Upstream,
} from '../helpers/domain.js';
import { newGroup, newUser } from '../store/contract.js';

const BASE = 'https://bridge.example/scim/v2';

const upstreamGroup = (over: Partial<CloudIdentityGroup> = {}): CloudIdentityGroup => ({
  GroupId: 'g-1',
  GroupName: 'engineering',
  DisplayName: 'Engineering',
  JoinType: 'Manual',
  CreatedTime: '2026-01-02T03:04:05+08:00',
  UpdatedTime: '2026-02-03T04:05:06+08:00',
  ...over,
});

const groupRecord = (over: Partial<GroupRecord> = {}): GroupRecord => ({
  scimId: 'g-1',
  groupName: 'engineering',
  displayName: 'Engineering',
  externalId: 'ext-1',
  attributes: {},
  version: 7,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-03-01T00:00:00.000Z',
  ...over,
});

describe('groupNameFor', () => {
  it('keeps [A-Za-z0-9._-], drops accents and turns every other run into one dash', () => {
    expect(groupNameFor('Engineering')).toBe('Engineering');
    expect(groupNameFor('Équipe Réseau & Sécurité')).toBe('Equipe-Reseau-Securite');
    expect(groupNameFor('  a//b  c ')).toBe('a-b-c');
    expect(groupNameFor('v1.2_beta-team')).toBe('v1.2_beta-team');
  });

  it('trims dashes and dots at both ends, also after cutting to the maximum length', () => {
    expect(groupNameFor('--.team.--')).toBe('team');
    const long = `${'a'.repeat(GROUP_NAME_MAX - 1)} b`;
    const name = groupNameFor(long);
    expect(name).toBe('a'.repeat(GROUP_NAME_MAX - 1));
    expect(groupNameFor('x'.repeat(500))).toHaveLength(GROUP_NAME_MAX);
  });

  it('falls back to a fixed name when nothing usable is left (e.g. only CJK characters)', () => {
    expect(groupNameFor('工程部')).toBe(FALLBACK_GROUP_NAME);
    expect(groupNameFor('---')).toBe(FALLBACK_GROUP_NAME);
  });
});

describe('withSuffix', () => {
  it('appends -xxxxxx (6 hex) and stays within the maximum length', () => {
    expect(withSuffix('team')).toMatch(/^team-[0-9a-f]{6}$/);
    const long = withSuffix('y'.repeat(GROUP_NAME_MAX));
    expect(long).toHaveLength(GROUP_NAME_MAX);
    expect(long).toMatch(/^y+-[0-9a-f]{6}$/);
    const names = new Set(Array.from({ length: 50 }, () => withSuffix('team')));
    expect(names.size).toBeGreaterThan(45);
  });
});

describe('GroupName derivation against CloudIdentity (the emulator)', () => {
  let upstream: Upstream;
  beforeAll(async () => {
    upstream = await startUpstream();
  });
  afterAll(() => upstream.close());

  it('every derived name, suffixed or not, is one CreateGroup accepts', async () => {
    const { ctx } = testContext();
    const displayNames = ['Ops', 'Équipe Réseau', '工程部', `${'long name '.repeat(20)}`, '..a..', 'x'];
    for (const displayName of displayNames) {
      for (const name of [groupNameFor(displayName), withSuffix(groupNameFor(displayName))]) {
        const created = await upstream.api.createGroup(
          { GroupName: name, JoinType: 'Manual', DisplayName: displayName.slice(0, 64) },
          { deadlineAt: ctx.deadlineAt },
        );
        expect(created.GroupName).toBe(name);
      }
    }
  });
});

describe('toScimGroup and groupVersion', () => {
  it('shows the record (externalId, version) and CloudIdentity (name, times), members with $ref', () => {
    const view: GroupView = {
      scimId: 'g-1',
      record: groupRecord(),
      upstream: upstreamGroup(),
      members: [{ value: 'u/1', display: 'Alice' }, { value: 'u2' }],
    };
    expect(toScimGroup(view, BASE)).toEqual({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      id: 'g-1',
      externalId: 'ext-1',
      displayName: 'Engineering',
      members: [
        { value: 'u/1', $ref: `${BASE}/Users/u%2F1`, display: 'Alice', type: 'User' },
        { value: 'u2', $ref: `${BASE}/Users/u2`, type: 'User' },
      ],
      meta: {
        resourceType: 'Group',
        created: '2026-01-01T19:04:05.000Z',
        // the later of the record's and CloudIdentity's change
        lastModified: '2026-03-01T00:00:00.000Z',
        location: `${BASE}/Groups/g-1`,
        version: 'W/"7"',
      },
    });
  });

  it('a group created in the console: no record, GroupName when DisplayName is empty, no members key', () => {
    const view: GroupView = {
      scimId: 'g-2',
      record: null,
      upstream: upstreamGroup({ GroupId: 'g-2', GroupName: 'console-made', DisplayName: '' }),
    };
    const scim = toScimGroup(view, BASE);
    expect(scim.displayName).toBe('console-made');
    expect(scim).not.toHaveProperty('externalId');
    expect(scim).not.toHaveProperty('members');
    expect(displayNameOf(view.upstream)).toBe('console-made');
    // The version follows CloudIdentity's UpdatedTime, so a console change changes the ETag.
    const v1 = groupVersion(view);
    expect(v1).toBe(`W/"g${Date.parse('2026-02-03T04:05:06+08:00')}"`);
    const changed = { ...view, upstream: { ...view.upstream, UpdatedTime: '2026-02-03T04:05:07+08:00' } };
    expect(groupVersion(changed)).not.toBe(v1);
    expect(groupVersion({ ...view, upstream: { ...view.upstream, UpdatedTime: 'garbage' } })).toBe('W/"g0"');
  });
});

describe.each(await storeKinds())('groupsOfUsersForScim (%s store)', (kind: StoreKind) => {
  it("answers many users' groups from the membership mirror, named by the group records", async () => {
    const t = await openTestStore(kind);
    try {
      const [alice, bob, carol] = [newUser(), newUser(), newUser()];
      for (const u of [alice, bob, carol]) await t.store.insertUser(u);
      const named = newGroup({ displayName: 'Named' });
      await t.store.insertGroup(named);
      await t.store.addMembership(named.scimId, alice.scimId);
      await t.store.addMembership(named.scimId, bob.scimId);
      // A membership of a group the bridge has no record of (its id only).
      await t.store.addMembership('g-unrecorded', alice.scimId);
      const result = await groupsOfUsersForScim(
        t.store,
        [alice.scimId, bob.scimId, carol.scimId],
        (id) => `${BASE}/Groups/${id}`,
      );
      const ofAlice = result.get(alice.scimId) ?? [];
      expect(ofAlice).toHaveLength(2);
      expect(ofAlice).toContainEqual({
        value: named.scimId,
        $ref: `${BASE}/Groups/${named.scimId}`,
        display: 'Named',
        type: 'direct',
      });
      expect(ofAlice).toContainEqual({
        value: 'g-unrecorded',
        $ref: `${BASE}/Groups/g-unrecorded`,
        type: 'direct',
      });
      expect(result.get(bob.scimId)).toEqual([
        { value: named.scimId, $ref: `${BASE}/Groups/${named.scimId}`, display: 'Named', type: 'direct' },
      ]);
      expect(result.get(carol.scimId) ?? []).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
