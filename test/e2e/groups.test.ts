// /Groups end to end: HTTP → bridge → CloudIdentity emulator, checking upstream state and call counts.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness, storeKinds } from '../helpers/harness.js';

type Json = Record<string, unknown>;

const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENTRA_GROUP = 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

const patch = (...Operations: Json[]) => ({ schemas: [PATCH_OP], Operations });
const unique = (prefix: string) => `${prefix} ${randomBytes(3).toString('hex')}`;
const groupsUrl = (filter: string, extra = '') =>
  `/scim/v2/Groups?filter=${encodeURIComponent(filter)}${extra}`;

/** Upstream calls made while `fn` ran (only the actions that were called). */
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

async function createUser(
  h: Harness,
  prefix = 'member',
): Promise<{ id: string; userName: string; userId: string }> {
  const userName = `${prefix}.${randomBytes(4).toString('hex')}@example.com`;
  const res = await h.http
    .post('/scim/v2/Users')
    .send({ schemas: [USER], userName, displayName: `Display ${userName}`, active: true });
  expect(res.status).toBe(201);
  const record = await h.store.getUser(res.body.id);
  return { id: res.body.id, userName, userId: record!.upstreamUserId! };
}

async function upstreamMembers(h: Harness, groupId: string): Promise<string[]> {
  const state = await h.upstream();
  return state.memberships.filter((m) => m.GroupId === groupId).map((m) => m.UserId);
}

async function upstreamGroup(h: Harness, groupId: string) {
  return (await h.upstream()).groups.find((g) => g.GroupId === groupId);
}

function memberValues(body: Json): string[] {
  return ((body.members as Json[] | undefined) ?? []).map((m) => String(m.value)).sort();
}

const kinds = await storeKinds();

describe.each(kinds)('/Groups (%s store)', (store) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ store });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('advertises Group in /ResourceTypes and /Schemas', async () => {
    const types = await h.http.get('/scim/v2/ResourceTypes');
    expect(types.body.Resources.map((t: Json) => t.id)).toContain('Group');
    const schemas = await h.http.get('/scim/v2/Schemas');
    expect(schemas.body.Resources.map((s: Json) => s.id)).toContain(GROUP);
  });

  describe('Entra ID sequence, default (non-compliant) PATCH dialect', () => {
    it('match, create, read, rename, add/remove members, delete', async () => {
      const [alice, bob] = [await createUser(h, 'alice'), await createUser(h, 'bob')];
      const name = unique('Entra Sales');

      const missing = await h.http.get(groupsUrl(`displayName eq "${name}"`, '&excludedAttributes=members'));
      expect(missing.status).toBe(200);
      expect(missing.body.totalResults).toBe(0);

      const created = await h.http
        .post('/scim/v2/Groups')
        .set('Content-Type', 'application/scim+json; charset=utf-8')
        .send({ schemas: [GROUP, ENTRA_GROUP], externalId: 'entra-obj-1', displayName: name });
      expect(created.status).toBe(201);
      expect(created.headers['content-type']).toMatch(/^application\/scim\+json/);
      const id = created.body.id as string;
      expect(created.headers.location).toMatch(new RegExp(`/scim/v2/Groups/${id}$`));
      expect(created.body).toMatchObject({ schemas: [GROUP], displayName: name, externalId: 'entra-obj-1' });
      expect(created.body.meta).toMatchObject({ resourceType: 'Group' });
      let group = await upstreamGroup(h, id);
      expect(group).toMatchObject({ DisplayName: name, JoinType: 'Manual' });
      const groupName = group!.GroupName;
      expect(groupName).toMatch(/^Entra-Sales-[0-9a-f]{6}$/);

      const read = await callsDuring(h, async () => {
        const got = await h.http.get(`/scim/v2/Groups/${id}?excludedAttributes=members`);
        expect(got.status).toBe(200);
        expect(got.body.members).toBeUndefined();
        expect(got.body.displayName).toBe(name);
      });
      expect(read).toEqual({ GetGroup: 1 });

      const renamed = `${name} EMEA`;
      const rename = await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .send(patch({ op: 'Replace', path: 'displayName', value: renamed }));
      expect(rename.status).toBe(204);
      expect(rename.text).toBe('');
      group = await upstreamGroup(h, id);
      expect(group).toMatchObject({ DisplayName: renamed, GroupName: groupName });

      const add = await h.http.patch(`/scim/v2/Groups/${id}`).send(
        patch({
          op: 'Add',
          path: 'members',
          value: [
            { $ref: null, value: alice.id },
            { $ref: null, value: bob.id },
          ],
        }),
      );
      expect(add.status).toBe(204);
      expect((await upstreamMembers(h, id)).sort()).toEqual([alice.userId, bob.userId].sort());

      const remove = await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .send(patch({ op: 'Remove', path: 'members', value: [{ value: alice.id }] }));
      expect(remove.status).toBe(204);
      expect(await upstreamMembers(h, id)).toEqual([bob.userId]);

      const full = await h.http.get(`/scim/v2/Groups/${id}`);
      expect(full.body.displayName).toBe(renamed);
      expect(full.body.members).toEqual([
        {
          value: bob.id,
          $ref: expect.stringMatching(new RegExp(`/scim/v2/Users/${bob.id}$`)),
          display: `Display ${bob.userName}`,
          type: 'User',
        },
      ]);

      const deleted = await h.http.delete(`/scim/v2/Groups/${id}`);
      expect(deleted.status).toBe(204);
      expect((await h.http.get(`/scim/v2/Groups/${id}`)).status).toBe(404);
      expect(await upstreamGroup(h, id)).toBeUndefined();
      expect(await h.store.getGroup(id)).toBeNull();
      expect((await h.http.delete(`/scim/v2/Groups/${id}`)).status).toBe(404);
    });
  });

  describe('Entra ID with aadOptscim062020 (compliant dialect) and validator group tests', () => {
    it('lower-case ops, remove members[value eq], replace without path, replace members', async () => {
      const [u1, u2, u3] = [await createUser(h), await createUser(h), await createUser(h)];
      const name = unique('Compliant Group');
      const created = await h.http
        .post('/scim/v2/Groups?aadOptscim062020')
        .send({ schemas: [GROUP], externalId: 'ext-c', displayName: name });
      expect(created.status).toBe(201);
      const id = created.body.id as string;

      // Filter with a different case and without members: an index lookup and no member reads.
      const filtered = await callsDuring(h, async () => {
        const res = await h.http.get(
          groupsUrl(`displayName eq "${name.toUpperCase()}"`, '&excludedAttributes=members&aadOptscim062020'),
        );
        expect(res.status).toBe(200);
        expect(res.body.totalResults).toBe(1);
        expect(res.body.Resources[0].id).toBe(id);
        expect(res.body.Resources[0].members).toBeUndefined();
      });
      expect(filtered).toEqual({ ListGroups: 1 });

      expect(
        (
          await h.http
            .patch(`/scim/v2/Groups/${id}?aadOptscim062020`)
            .send(patch({ op: 'add', path: 'members', value: [{ value: u1.id }, { value: u2.id }] }))
        ).status,
      ).toBe(204);
      expect(
        (
          await h.http
            .patch(`/scim/v2/Groups/${id}`)
            .send(patch({ op: 'remove', path: `members[value eq "${u1.id}"]` }))
        ).status,
      ).toBe(204);
      expect(await upstreamMembers(h, id)).toEqual([u2.userId]);

      // "Patch Group – Replace Attributes": replace without a path.
      const replaced = await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .send(patch({ op: 'replace', value: { externalId: 'ext-c2', displayName: `${name} v2` } }));
      expect(replaced.status).toBe(204);
      const got = await h.http.get(`/scim/v2/Groups/${id}?excludedAttributes=members`);
      expect(got.body).toMatchObject({ externalId: 'ext-c2', displayName: `${name} v2` });

      // "Patch Group – Add Member" as a full replace: a diff, here one add and one remove.
      const diff = await callsDuring(h, async () => {
        const res = await h.http
          .patch(`/scim/v2/Groups/${id}`)
          .send(patch({ op: 'replace', path: 'members', value: [{ value: u3.id }] }));
        expect(res.status).toBe(204);
      });
      expect(diff).toMatchObject({ ListGroupMembers: 1, AddUserToGroup: 1, RemoveUserFromGroup: 1 });
      expect(await upstreamMembers(h, id)).toEqual([u3.userId]);

      // Preview test: add and remove of the same member in one PATCH leaves it out.
      const both = await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .send(
          patch(
            { op: 'add', path: 'members', value: [{ value: u1.id }] },
            { op: 'remove', path: `members[value eq "${u1.id}"]` },
          ),
        );
      expect(both.status).toBe(204);
      expect(await upstreamMembers(h, id)).toEqual([u3.userId]);

      // PATCH with attributes requested answers 200 and the group.
      const withBody = await h.http
        .patch(`/scim/v2/Groups/${id}?attributes=members`)
        .send(patch({ op: 'add', path: 'members', value: [{ value: u2.id }] }));
      expect(withBody.status).toBe(200);
      expect(withBody.body.id).toBe(id);
      expect(memberValues(withBody.body)).toEqual([u2.id, u3.id].sort());
      expect(withBody.body.displayName).toBeUndefined();

      expect((await h.http.delete(`/scim/v2/Groups/${id}`)).status).toBe(204);
    });
  });

  describe('Okta Group Push', () => {
    it('create with members: [], rename with id in value, remove+add, delete', async () => {
      const [u1, u2, u3] = [await createUser(h), await createUser(h), await createUser(h)];
      const name = unique('Okta Push');
      const created = await h.http
        .post('/scim/v2/Groups')
        .set('Content-Type', 'application/json')
        .set('User-Agent', 'Okta SCIM Client 1.0.0')
        .send({ schemas: [GROUP], displayName: name, members: [] });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ displayName: name, members: [] });
      const id = created.body.id as string;

      const rename = await callsDuring(h, async () => {
        const res = await h.http
          .patch(`/scim/v2/Groups/${id}`)
          .send(patch({ op: 'replace', value: { id, displayName: `${name} renamed` } }));
        expect(res.status).toBe(204);
      });
      expect(rename.UpdateGroup).toBe(1);
      expect((await upstreamGroup(h, id))?.DisplayName).toBe(`${name} renamed`);

      await h.http.patch(`/scim/v2/Groups/${id}`).send(
        patch({
          op: 'add',
          path: 'members',
          value: [
            { value: u1.id, display: u1.userName },
            { value: u2.id, display: u2.userName },
          ],
        }),
      );
      // Okta sends the (unchanged) rename with every membership update: no UpdateGroup then.
      const membership = await callsDuring(h, async () => {
        const res = await h.http
          .patch(`/scim/v2/Groups/${id}`)
          .send(
            patch(
              { op: 'replace', value: { id, displayName: `${name} renamed` } },
              { op: 'remove', path: `members[value eq "${u1.id}"]` },
              { op: 'add', path: 'members', value: [{ value: u3.id, display: u3.userName }] },
            ),
          );
        expect(res.status).toBe(204);
      });
      expect(membership).toEqual({ GetGroup: 1, RemoveUserFromGroup: 1, AddUserToGroup: 1 });
      expect((await upstreamMembers(h, id)).sort()).toEqual([u2.userId, u3.userId].sort());

      // Remove-then-add of the same member keeps it.
      await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .send(
          patch(
            { op: 'remove', path: `members[value eq "${u2.id}"]` },
            { op: 'add', path: 'members', value: [{ value: u2.id, display: u2.userName }] },
          ),
        );
      expect((await upstreamMembers(h, id)).sort()).toEqual([u2.userId, u3.userId].sort());

      // Okta import reads groups with paging and integer fields.
      const page = await h.http.get('/scim/v2/Groups?startIndex=1&count=100');
      expect(page.status).toBe(200);
      expect(typeof page.body.totalResults).toBe('number');
      const mine = page.body.Resources.find((g: Json) => g.id === id);
      expect(memberValues(mine)).toEqual([u2.id, u3.id].sort());

      const del = await callsDuring(h, async () => {
        expect((await h.http.delete(`/scim/v2/Groups/${id}`)).status).toBe(204);
      });
      // The emulator refuses to delete a group with members: members are removed, then it is deleted.
      expect(del).toMatchObject({ DeleteGroup: 2, ListGroupMembers: 1, RemoveUserFromGroup: 2 });
      expect(await upstreamGroup(h, id)).toBeUndefined();
      expect(await h.store.groupsOfUser(u2.id)).not.toContain(id);
    });
  });

  describe('membership', () => {
    it('two concurrent membership PATCHes on one group lose no member', async () => {
      const users = await Promise.all(Array.from({ length: 10 }, () => createUser(h, 'conc')));
      const created = await h.http.post('/scim/v2/Groups').send({ displayName: unique('Concurrent') });
      const id = created.body.id as string;
      const [a, b] = await Promise.all([
        h.http
          .patch(`/scim/v2/Groups/${id}`)
          .send(
            patch({ op: 'add', path: 'members', value: users.slice(0, 5).map((u) => ({ value: u.id })) }),
          ),
        h.http
          .patch(`/scim/v2/Groups/${id}`)
          .send(patch({ op: 'Add', path: 'members', value: users.slice(5).map((u) => ({ value: u.id })) })),
      ]);
      expect([a.status, b.status]).toEqual([204, 204]);
      expect((await upstreamMembers(h, id)).sort()).toEqual(users.map((u) => u.userId).sort());

      // Ten one-member PATCHes at once, half adds and half removes.
      const results = await Promise.all(
        users.map((u, i) =>
          h.http
            .patch(`/scim/v2/Groups/${id}`)
            .send(
              i % 2 === 0
                ? patch({ op: 'remove', path: `members[value eq "${u.id}"]` })
                : patch({ op: 'add', path: 'members', value: [{ value: u.id }] }),
            ),
        ),
      );
      expect(results.map((r) => r.status)).toEqual(users.map(() => 204));
      expect((await upstreamMembers(h, id)).sort()).toEqual(
        users
          .filter((_, i) => i % 2 === 1)
          .map((u) => u.userId)
          .sort(),
      );
    });

    it('survives ConcurrentException from CloudIdentity (retried)', async () => {
      const users = await Promise.all(Array.from({ length: 4 }, () => createUser(h, 'retry')));
      const id = (await h.http.post('/scim/v2/Groups').send({ displayName: unique('Retry') })).body
        .id as string;
      h.emulator.setFaults([
        { action: 'AddUserToGroup', probability: 1, fault: 'ConcurrentException', times: 2 },
      ]);
      try {
        const res = await h.http
          .patch(`/scim/v2/Groups/${id}`)
          .send(patch({ op: 'add', path: 'members', value: users.map((u) => ({ value: u.id })) }));
        expect(res.status).toBe(204);
      } finally {
        h.emulator.setFaults([]);
      }
      expect((await upstreamMembers(h, id)).sort()).toEqual(users.map((u) => u.userId).sort());
    });

    it('adding a member twice and removing a non-member are successes', async () => {
      const u = await createUser(h);
      const other = await createUser(h);
      const id = (await h.http.post('/scim/v2/Groups').send({ displayName: unique('Idem') })).body
        .id as string;
      const add = patch({ op: 'add', path: 'members', value: [{ value: u.id }] });
      expect((await h.http.patch(`/scim/v2/Groups/${id}`).send(add)).status).toBe(204);
      expect((await h.http.patch(`/scim/v2/Groups/${id}`).send(add)).status).toBe(204);
      const rm = await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .send(patch({ op: 'remove', path: 'members', value: [{ value: other.id }] }));
      expect(rm.status).toBe(204);
      expect(await upstreamMembers(h, id)).toEqual([u.userId]);
    });

    it('PUT replaces displayName, externalId and members (as a diff)', async () => {
      const [u1, u2, u3] = [await createUser(h), await createUser(h), await createUser(h)];
      const name = unique('Put Group');
      const created = await h.http
        .post('/scim/v2/Groups')
        .send({ displayName: name, externalId: 'p1', members: [{ value: u1.id }, { value: u2.id }] });
      expect(created.status).toBe(201);
      expect(memberValues(created.body)).toEqual([u1.id, u2.id].sort());
      const id = created.body.id as string;

      const calls = await callsDuring(h, async () => {
        const put = await h.http.put(`/scim/v2/Groups/${id}`).send({
          schemas: [GROUP],
          id,
          displayName: `${name} put`,
          members: [{ value: u2.id }, { value: u3.id }],
        });
        expect(put.status).toBe(200);
        expect(put.body).toMatchObject({ displayName: `${name} put` });
        expect(put.body.externalId).toBeUndefined();
        expect(memberValues(put.body)).toEqual([u2.id, u3.id].sort());
      });
      expect(calls).toMatchObject({ AddUserToGroup: 1, RemoveUserFromGroup: 1, UpdateGroup: 1 });

      // PUT without members leaves them alone.
      const keep = await h.http.put(`/scim/v2/Groups/${id}`).send({ displayName: `${name} put` });
      expect(keep.status).toBe(200);
      expect((await upstreamMembers(h, id)).sort()).toEqual([u2.userId, u3.userId].sort());

      const mismatch = await h.http.put(`/scim/v2/Groups/${id}`).send({ id: 'other', displayName: 'x' });
      expect(mismatch.status).toBe(400);
      expect(mismatch.body.scimType).toBe('mutability');
    });

    it('replace without path carrying members is a full replace; remove of members without value empties', async () => {
      const [u1, u2, u3] = [await createUser(h), await createUser(h), await createUser(h)];
      const id = (
        await h.http
          .post('/scim/v2/Groups')
          .send({ displayName: unique('Whole'), members: [{ value: u1.id }] })
      ).body.id as string;
      const res = await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .send(patch({ op: 'replace', value: { members: [{ value: u2.id }, { value: u3.id }] } }));
      expect(res.status).toBe(204);
      expect((await upstreamMembers(h, id)).sort()).toEqual([u2.userId, u3.userId].sort());
      expect(await h.store.groupsOfUser(u1.id)).toEqual([]);
      expect(await h.store.groupsOfUser(u2.id)).toEqual([id]);

      // A non-id filter reads the list and removes what matches.
      const byDisplay = await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .send(patch({ op: 'remove', path: `members[display eq "DISPLAY ${u2.userName}"]` }));
      expect(byDisplay.status).toBe(204);
      expect(await upstreamMembers(h, id)).toEqual([u3.userId]);

      const all = await h.http.patch(`/scim/v2/Groups/${id}`).send(patch({ op: 'Remove', path: 'members' }));
      expect(all.status).toBe(204);
      expect(await upstreamMembers(h, id)).toEqual([]);
    });

    it('GroupName: stable, derived from the first displayName, unique', async () => {
      const tag = randomBytes(3).toString('hex');
      const a = await h.http.post('/scim/v2/Groups').send({ displayName: `Café & Co ${tag}` });
      expect((await upstreamGroup(h, a.body.id))?.GroupName).toBe(`Cafe-Co-${tag}`);
      // Renamed away, its old name is free as a displayName but the GroupName stays taken.
      await h.http
        .patch(`/scim/v2/Groups/${a.body.id}`)
        .send(patch({ op: 'replace', path: 'displayName', value: `Renamed ${tag}` }));
      expect((await upstreamGroup(h, a.body.id))?.GroupName).toBe(`Cafe-Co-${tag}`);
      const b = await h.http.post('/scim/v2/Groups').send({ displayName: `Cafe-Co-${tag}` });
      expect(b.status).toBe(201);
      expect((await upstreamGroup(h, b.body.id))?.GroupName).toMatch(
        new RegExp(`^Cafe-Co-${tag}-[0-9a-f]{6}$`),
      );
      const cjk = await h.http.post('/scim/v2/Groups').send({ displayName: `销售部 ${tag}` });
      expect(cjk.status).toBe(201);
      expect(cjk.body.displayName).toBe(`销售部 ${tag}`);
      expect((await upstreamGroup(h, cjk.body.id))?.GroupName).toBe(tag);
      const cjkOnly = await h.http.post('/scim/v2/Groups').send({ displayName: `研发部${'中'.repeat(3)}` });
      expect((await upstreamGroup(h, cjkOnly.body.id))?.GroupName).toMatch(/^group-[0-9a-f]{6}$/);
    });

    it('If-Match: 412 on a stale version, ETag changes with membership', async () => {
      const u = await createUser(h);
      const created = await h.http.post('/scim/v2/Groups').send({ displayName: unique('Etag') });
      const id = created.body.id as string;
      const etag = created.headers.etag;
      expect(etag).toBe(created.body.meta.version);
      const ok = await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .set('If-Match', etag)
        .send(patch({ op: 'add', path: 'members', value: [{ value: u.id }] }));
      expect(ok.status).toBe(204);
      expect(ok.headers.etag).not.toBe(etag);
      const stale = await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .set('If-Match', etag)
        .send(patch({ op: 'replace', path: 'displayName', value: 'stale' }));
      expect(stale.status).toBe(412);
      expect((await h.http.delete(`/scim/v2/Groups/${id}`).set('If-Match', etag)).status).toBe(412);
    });

    it('deleting a user removes it from its groups; users get `groups` from the mirror', async () => {
      const [u1, u2] = [await createUser(h), await createUser(h)];
      const name = unique('Leavers');
      const id = (await h.http.post('/scim/v2/Groups').send({ displayName: name })).body.id as string;
      await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .send(patch({ op: 'add', path: 'members', value: [{ value: u1.id }, { value: u2.id }] }));
      const user = await h.http.get(`/scim/v2/Users/${u1.id}`);
      expect(user.body.groups).toEqual([
        {
          value: id,
          $ref: expect.stringMatching(new RegExp(`/scim/v2/Groups/${id}$`)),
          display: name,
          type: 'direct',
        },
      ]);
      const listed = await h.http.get('/scim/v2/Users').query({ filter: `id eq "${u2.id}"` });
      expect(listed.body.Resources[0].groups.map((g: { value: string }) => g.value)).toEqual([id]);
      const without = await h.http.get(`/scim/v2/Users/${u1.id}`).query({ excludedAttributes: 'groups' });
      expect(without.body.groups).toBeUndefined();

      expect((await h.http.delete(`/scim/v2/Users/${u1.id}`)).status).toBe(204);
      const got = await h.http.get(`/scim/v2/Groups/${id}`);
      expect(memberValues(got.body)).toEqual([u2.id]);
      expect(await upstreamMembers(h, id)).toEqual([u2.userId]);
      expect(await h.store.groupsOfUser(u1.id)).toEqual([]);
    });

    it('a deactivated (deleted upstream) user: membership kept as intent and restored on reactivation', async () => {
      const u = await createUser(h);
      const id = (await h.http.post('/scim/v2/Groups').send({ displayName: unique('Tomb') })).body
        .id as string;
      const off = await h.http
        .patch(`/scim/v2/Users/${u.id}`)
        .send(patch({ op: 'Replace', path: 'active', value: 'False' }));
      expect(off.status).toBe(200);
      const calls = await callsDuring(h, async () => {
        const res = await h.http
          .patch(`/scim/v2/Groups/${id}`)
          .send(patch({ op: 'add', path: 'members', value: [{ value: u.id }] }));
        expect(res.status).toBe(204);
      });
      expect(calls.AddUserToGroup).toBeUndefined();
      expect((await h.store.getUser(u.id))?.tombstoneGroupIds).toEqual([id]);

      const on = await h.http
        .patch(`/scim/v2/Users/${u.id}`)
        .send(patch({ op: 'replace', value: { active: true } }));
      expect(on.status).toBe(200);
      const record = await h.store.getUser(u.id);
      expect(await upstreamMembers(h, id)).toEqual([record!.upstreamUserId]);
      const got = await h.http.get(`/scim/v2/Groups/${id}`);
      expect(memberValues(got.body)).toEqual([u.id]);
    });

    it('users created outside the bridge are members by their UserId (checked with GetUser)', async () => {
      const foreign = await h.client.createUser({ UserName: `console.${randomBytes(3).toString('hex')}` });
      const id = (await h.http.post('/scim/v2/Groups').send({ displayName: unique('Foreign members') })).body
        .id as string;
      const calls = await callsDuring(h, async () => {
        const res = await h.http
          .patch(`/scim/v2/Groups/${id}`)
          .send(patch({ op: 'add', path: 'members', value: [{ value: foreign.UserId }] }));
        expect(res.status).toBe(204);
      });
      expect(calls).toEqual({ GetGroup: 1, GetUser: 1, AddUserToGroup: 1 });
      const got = await h.http.get(`/scim/v2/Groups/${id}`);
      expect(got.body.members).toEqual([
        expect.objectContaining({ value: foreign.UserId, display: foreign.UserName }),
      ]);
    });
  });

  describe('groups created outside the bridge', () => {
    it('are readable and listable without a record; a first write creates one', async () => {
      const console = await h.client.createGroup({
        GroupName: `console-${randomBytes(3).toString('hex')}`,
        JoinType: 'Manual',
      });
      const got = await h.http.get(`/scim/v2/Groups/${console.GroupId}`);
      expect(got.status).toBe(200);
      expect(got.body).toMatchObject({ id: console.GroupId, displayName: console.GroupName, members: [] });
      expect(await h.store.getGroup(console.GroupId)).toBeNull();

      const byName = await h.http.get(groupsUrl(`displayName eq "${console.GroupName.toUpperCase()}"`));
      expect(byName.body.totalResults).toBe(1);

      const dup = await h.http.post('/scim/v2/Groups').send({ displayName: console.GroupName });
      expect(dup.status).toBe(409);
      expect(dup.body.scimType).toBe('uniqueness');

      const write = await h.http
        .patch(`/scim/v2/Groups/${console.GroupId}`)
        .send(patch({ op: 'add', path: 'externalId', value: 'adopted' }));
      expect(write.status).toBe(204);
      expect(await h.store.getGroup(console.GroupId)).toMatchObject({
        externalId: 'adopted',
        groupName: console.GroupName,
      });
      const byExt = await h.http.get(groupsUrl('externalId eq "adopted"'));
      expect(byExt.body.Resources.map((g: Json) => g.id)).toEqual([console.GroupId]);
    });
  });

  describe('queries', () => {
    it('filters by id, externalId, displayName (index) and others (bounded scan); pages; .search', async () => {
      const tag = randomBytes(3).toString('hex');
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await h.http
          .post('/scim/v2/Groups')
          .send({ displayName: `Query ${tag} ${i}`, externalId: `q-${tag}-${i % 2}` });
        ids.push(res.body.id);
      }
      const byId = await h.http.get(groupsUrl(`id eq "${ids[2]}"`));
      expect(byId.body.Resources.map((g: Json) => g.id)).toEqual([ids[2]]);

      const byExt = await h.http.get(groupsUrl(`externalId eq "q-${tag}-0"`, '&excludedAttributes=members'));
      expect(byExt.body.Resources.map((g: Json) => g.id).sort()).toEqual([ids[0], ids[2], ids[4]].sort());

      const scan = await h.http.get(groupsUrl(`displayName sw "query ${tag}"`, '&count=2&startIndex=2'));
      expect(scan.status).toBe(200);
      expect(scan.body).toMatchObject({ totalResults: 5, startIndex: 2, itemsPerPage: 2 });
      expect(scan.body.Resources.map((g: Json) => g.id)).toEqual(ids.slice(1, 3));

      const all = await h.http.get('/scim/v2/Groups?count=1000&attributes=displayName');
      const total = all.body.totalResults as number;
      expect(all.body.Resources).toHaveLength(total);
      expect(all.body.Resources[0].members).toBeUndefined();
      const paged: string[] = [];
      for (let start = 1; start <= total; start += 3) {
        const page = await h.http.get(
          `/scim/v2/Groups?startIndex=${start}&count=3&excludedAttributes=members`,
        );
        paged.push(...page.body.Resources.map((g: Json) => g.id));
      }
      expect(paged).toEqual(all.body.Resources.map((g: Json) => g.id));

      const noMembers = await callsDuring(h, async () => {
        const res = await h.http.get(
          '/scim/v2/Groups?startIndex=2&count=3&attributes=displayName,externalId',
        );
        expect(res.body.itemsPerPage).toBe(3);
      });
      expect(noMembers).toEqual({ ListGroups: 1 });

      const search = await h.http.post('/scim/v2/Groups/.search').send({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
        filter: `displayName eq "query ${tag} 3"`,
        excludedAttributes: ['members'],
      });
      expect(search.status).toBe(200);
      expect(search.body.Resources.map((g: Json) => g.id)).toEqual([ids[3]]);

      const none = await h.http.get(groupsUrl('displayName eq "no such group anywhere"'));
      expect(none.body.totalResults).toBe(0);
      const count0 = await h.http.get('/scim/v2/Groups?count=0');
      expect(count0.body.totalResults).toBe(total);
      expect(count0.body.Resources).toEqual([]);

      const badFilter = await h.http.get(groupsUrl('members.value eq "x"'));
      expect(badFilter.status).toBe(400);
      expect(badFilter.body.scimType).toBe('invalidFilter');
    });
  });

  describe('bad input', () => {
    let id: string;
    let name: string;
    beforeAll(async () => {
      name = unique('Bad Input');
      id = (await h.http.post('/scim/v2/Groups').send({ displayName: name })).body.id;
    });

    async function expectError(res: { status: number; body: Json }, status: number, scimType?: string) {
      expect(res.status).toBe(status);
      expect(res.body.schemas).toEqual([ERROR]);
      expect(res.body.status).toBe(String(status));
      if (scimType) expect(res.body.scimType).toBe(scimType);
      expect(typeof res.body.detail).toBe('string');
    }

    it('unknown member id → 400 invalidValue naming it, before any mutation', async () => {
      const good = await createUser(h);
      const calls = await callsDuring(h, async () => {
        const res = await h.http.patch(`/scim/v2/Groups/${id}`).send(
          patch({
            op: 'add',
            path: 'members',
            value: [{ value: good.id }, { value: 'no-such-user-123' }],
          }),
        );
        await expectError(res, 400, 'invalidValue');
        expect(res.body.detail).toContain('no-such-user-123');
      });
      expect(calls.AddUserToGroup).toBeUndefined();
      expect(await upstreamMembers(h, id)).toEqual([]);

      const post = await h.http
        .post('/scim/v2/Groups')
        .send({ displayName: unique('Never'), members: [{ value: 'ghost-1' }] });
      await expectError(post, 400, 'invalidValue');
      expect(post.body.detail).toContain('ghost-1');
    });

    it('malformed member values → 400', async () => {
      const cases: unknown[] = [
        'just-a-string',
        [{ display: 'no value' }],
        [{ value: 42 }],
        [{ value: '' }],
        ['x'],
      ];
      for (const value of cases) {
        const res = await h.http
          .patch(`/scim/v2/Groups/${id}`)
          .send(patch({ op: 'add', path: 'members', value }));
        await expectError(res, 400, 'invalidValue');
      }
      const badId = await h.http
        .patch(`/scim/v2/Groups/${id}`)
        .send(patch({ op: 'add', path: 'members', value: [{ value: 'bad id with spaces' }] }));
      await expectError(badId, 400, 'invalidValue');
      expect(badId.body.detail).toContain('bad id with spaces');
      const postBad = await h.http
        .post('/scim/v2/Groups')
        .send({ displayName: unique('X'), members: 'nope' });
      await expectError(postBad, 400, 'invalidValue');
    });

    it('invalid paths → 400 invalidPath / noTarget / mutability', async () => {
      const cases: Array<[Json, string]> = [
        [{ op: 'replace', path: 'nickName', value: 'x' }, 'invalidPath'],
        [{ op: 'add', path: 'members[value eq "x"]', value: [{ value: 'x' }] }, 'invalidPath'],
        [{ op: 'remove', path: 'members[value eq "x"].display' }, 'invalidPath'],
        [{ op: 'remove', path: 'members[value eq ]' }, 'invalidPath'],
        [{ op: 'remove' }, 'noTarget'],
        [{ op: 'remove', path: 'displayName' }, 'mutability'],
        [{ op: 'replace', path: 'id', value: 'x' }, 'mutability'],
        [{ op: 'move', path: 'displayName', value: 'x' }, 'invalidSyntax'],
        [{ op: 'add', path: 'members' }, 'invalidValue'],
      ];
      for (const [operation, scimType] of cases) {
        const res = await h.http.patch(`/scim/v2/Groups/${id}`).send(patch(operation));
        await expectError(res, 400, scimType);
      }
      await expectError(
        await h.http.patch(`/scim/v2/Groups/${id}`).send({ Operations: [{ op: 'add' }] }),
        400,
        'invalidSyntax',
      );
    });

    it('displayName missing or too long → 400 before any upstream call', async () => {
      const calls = await callsDuring(h, async () => {
        await expectError(
          await h.http.post('/scim/v2/Groups').send({ schemas: [GROUP] }),
          400,
          'invalidValue',
        );
        const long = await h.http.post('/scim/v2/Groups').send({ displayName: 'x'.repeat(65) });
        await expectError(long, 400, 'invalidValue');
        expect(long.body.detail).toContain('64');
        const patchLong = await h.http
          .patch(`/scim/v2/Groups/${id}`)
          .send(patch({ op: 'replace', path: 'displayName', value: 'y'.repeat(65) }));
        await expectError(patchLong, 400, 'invalidValue');
      });
      expect(calls).toEqual({});
      const ok = await h.http
        .post('/scim/v2/Groups')
        .send({ displayName: 'z'.repeat(63) + randomBytes(1).toString('hex').slice(0, 1) });
      expect(ok.status).toBe(201);
    });

    it('duplicate displayName in any case → 409 uniqueness (create and rename)', async () => {
      await expectError(
        await h.http.post('/scim/v2/Groups').send({ displayName: name.toUpperCase() }),
        409,
        'uniqueness',
      );
      const other = await h.http.post('/scim/v2/Groups').send({ displayName: unique('Other') });
      const rename = await h.http
        .patch(`/scim/v2/Groups/${other.body.id}`)
        .send(patch({ op: 'replace', path: 'displayName', value: name.toLowerCase() }));
      await expectError(rename, 409, 'uniqueness');
      expect((await upstreamGroup(h, other.body.id))?.DisplayName).toBe(other.body.displayName);
      // Concurrent creates of one name: exactly one wins, and no stray upstream group is left.
      const same = unique('Race');
      const results = await Promise.all(
        [1, 2, 3].map(() => h.http.post('/scim/v2/Groups').send({ displayName: same })),
      );
      expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409]);
      const upstream = (await h.upstream()).groups.filter((g) => g.DisplayName === same);
      expect(upstream).toHaveLength(1);
    });

    it('unknown ids → 404', async () => {
      await expectError(await h.http.get('/scim/v2/Groups/does-not-exist'), 404);
      await expectError(await h.http.get('/scim/v2/Groups/bad%20id'), 404);
      await expectError(
        await h.http
          .patch('/scim/v2/Groups/does-not-exist')
          .send(patch({ op: 'add', path: 'externalId', value: 'x' })),
        404,
      );
      await expectError(await h.http.delete('/scim/v2/Groups/does-not-exist'), 404);
    });
  });
});
