// A 2,000-member group: member reads page through ListGroupMembers; one more member costs one mutation.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';

type Json = Record<string, unknown>;
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const patch = (...Operations: Json[]) => ({ schemas: [PATCH_OP], Operations });

async function callsDuring(h: Harness, fn: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = h.emulator.calls();
  await fn();
  const after = h.emulator.calls();
  const delta: Record<string, number> = {};
  for (const [action, n] of Object.entries(after)) {
    const d = n - (before[action] ?? 0);
    if (d > 0) delta[action] = d;
  }
  return delta;
}

describe('/Groups with 2,000 members', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('adds 2,000 members, reads them all back with paging, and adds one more with one mutation', async () => {
    const prefix = `scale-${randomBytes(3).toString('hex')}-`;
    h.emulator.seedUsers(2000, prefix);
    // Users created in CloudIdentity directly: their SCIM id is their UserId.
    const seeded = (await h.upstream()).users
      .filter((u) => u.UserName.startsWith(prefix))
      .map((u) => u.UserId);
    expect(seeded).toHaveLength(2000);

    const name = `Big ${randomBytes(3).toString('hex')}`;
    const created = await h.http.post('/scim/v2/Groups').send({ displayName: name, members: [] });
    expect(created.status).toBe(201);
    const id = created.body.id as string;

    // Entra-style batches of members.
    const adding = await callsDuring(h, async () => {
      for (let i = 0; i < seeded.length; i += 500) {
        const batch = seeded.slice(i, i + 500).map((value) => ({ $ref: null, value }));
        const res = await h.http
          .patch(`/scim/v2/Groups/${id}`)
          .send(patch({ op: 'Add', path: 'members', value: batch }));
        expect(res.status).toBe(204);
      }
    });
    expect(adding).toEqual({ GetGroup: 4, GetUser: 2000, AddUserToGroup: 2000 });
    expect((await h.upstream()).memberships.filter((m) => m.GroupId === id)).toHaveLength(2000);

    let body: Json = {};
    const reading = await callsDuring(h, async () => {
      const res = await h.http.get(`/scim/v2/Groups/${id}`);
      expect(res.status).toBe(200);
      body = res.body;
    });
    expect(reading).toEqual({ GetGroup: 1, ListGroupMembers: 20 });
    const members = body.members as Json[];
    expect(members).toHaveLength(2000);
    expect(new Set(members.map((m) => m.value))).toEqual(new Set(seeded));
    expect(members[0]).toMatchObject({
      display: expect.stringMatching(/^Seed User /),
      $ref: expect.stringContaining('/Users/'),
    });

    // Entra's lookups never read the member list.
    const lookup = await callsDuring(h, async () => {
      const res = await h.http.get(
        `/scim/v2/Groups?filter=${encodeURIComponent(`displayName eq "${name.toLowerCase()}"`)}&excludedAttributes=members`,
      );
      expect(res.body.totalResults).toBe(1);
      await h.http.get(`/scim/v2/Groups/${id}?excludedAttributes=members`);
    });
    expect(lookup).toEqual({ ListGroups: 1, GetGroup: 1 });

    // One more member (a user the bridge created): exactly one upstream mutation, no member reads.
    const user = await h.http.post('/scim/v2/Users').send({ userName: `${prefix}extra@example.com` });
    expect(user.status).toBe(201);
    const one = await callsDuring(h, async () => {
      const res = await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .send(patch({ op: 'Add', path: 'members', value: [{ $ref: null, value: user.body.id }] }));
      expect(res.status).toBe(204);
    });
    expect(one).toEqual({ GetGroup: 1, AddUserToGroup: 1 });

    // And removing one (Entra default dialect): one mutation too.
    const removeOne = await callsDuring(h, async () => {
      const res = await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .send(patch({ op: 'Remove', path: 'members', value: [{ value: seeded[1234] }] }));
      expect(res.status).toBe(204);
    });
    expect(removeOne).toEqual({ GetGroup: 1, RemoveUserFromGroup: 1 });
    expect((await h.upstream()).memberships.filter((m) => m.GroupId === id)).toHaveLength(2000);

    // Deleting the group empties it first (CloudIdentity refuses to delete a group with members).
    const deleting = await callsDuring(h, async () => {
      expect((await h.http.delete(`/scim/v2/Groups/${id}`)).status).toBe(204);
    });
    expect(deleting).toEqual({ DeleteGroup: 2, ListGroupMembers: 20, RemoveUserFromGroup: 2000 });
    expect((await h.upstream()).groups.find((g) => g.GroupId === id)).toBeUndefined();
  }, 120_000);
});
