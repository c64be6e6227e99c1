// The core /Users lifecycle, run against every store implementation (the embedded store always, PostgreSQL
// when the test server is reachable): create, read, PATCH, PUT, deactivate, reactivate, delete,
// filter, ETag/If-Match, DEACTIVATE_ACTION=delete vs retain, and users created outside the bridge.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness, storeKinds } from '../helpers/harness.js';
import {
  ENTERPRISE,
  expectListResponse,
  expectScimError,
  filterUrl,
  type LooseJson,
  patchBody,
  type Res,
  SCIM_CONTENT_TYPE,
  USER_SCHEMA,
  uniqueName,
  userBody,
  type Variant,
  variantApp,
} from './users-support.js';

const kinds = await storeKinds();

describe.each(kinds)('/Users core lifecycle (%s store)', (store) => {
  let h: Harness;
  let retain: Variant;
  beforeAll(async () => {
    h = await startHarness({ store });
    retain = variantApp(h, { env: { DEACTIVATE_ACTION: 'retain' } });
  });
  afterAll(async () => {
    await retain?.close();
    await h?.close();
  });

  const upstreamUser = async (userName: string) =>
    (await h.upstream()).users.find((u) => u.UserName.toLowerCase() === userName.toLowerCase());
  const create = async (userName: string, extra: Record<string, unknown> = {}) => {
    const res = (await h.http.post('/scim/v2/Users').send(userBody(userName, extra))) as unknown as Res;
    expect(res.status, res.text).toBe(201);
    return res.body as Record<string, unknown> & { id: string };
  };

  it('creates a user: 201, Location = meta.location, ETag = meta.version, upstream fields mapped', async () => {
    const userName = uniqueName('core.create');
    const res = (await h.http
      .post('/scim/v2/Users')
      .set('Content-Type', 'application/scim+json')
      .send({
        schemas: [USER_SCHEMA, ENTERPRISE],
        userName,
        externalId: 'ext-core-1',
        name: { givenName: 'Ada', familyName: 'Lovelace', formatted: 'Ada Lovelace' },
        emails: [
          { value: 'home@example.org', type: 'home' },
          { value: userName, type: 'work', primary: true },
        ],
        phoneNumbers: [{ value: '+86 10 1234', type: 'work' }],
        title: 'Countess',
        active: true,
        password: 'Pa55word!never-returned',
        [ENTERPRISE]: { employeeNumber: '42', department: 'Maths' },
      })) as unknown as Res;
    expect(res.status, res.text).toBe(201);
    expect(res.headers['content-type']).toMatch(SCIM_CONTENT_TYPE);
    const body = res.body as LooseJson;
    expect(body.id).toMatch(/^[\w-]+$/);
    expect(res.headers.location).toBe(body.meta.location);
    expect(body.meta.location).toMatch(new RegExp(`/scim/v2/Users/${body.id}$`));
    expect(res.headers.etag).toBe(body.meta.version);
    expect(body.meta.resourceType).toBe('User');
    expect(body.schemas).toContain(USER_SCHEMA);
    expect(body.schemas).toContain(ENTERPRISE);
    expect(body).toMatchObject({
      userName,
      externalId: 'ext-core-1',
      active: true,
      title: 'Countess',
      name: { givenName: 'Ada', familyName: 'Lovelace' },
      [ENTERPRISE]: { employeeNumber: '42', department: 'Maths' },
    });
    // No displayName was sent: SCIM shows none, CloudIdentity gets one derived from name.formatted.
    expect(body.displayName).toBeUndefined();
    expect(body.emails).toHaveLength(2);
    expect(res.text).not.toContain('Pa55word');
    expect(body.password).toBeUndefined();
    expect(await upstreamUser(userName)).toMatchObject({
      UserName: userName,
      DisplayName: 'Ada Lovelace',
      Email: userName,
      Phone: '+86 10 1234',
    });

    const got = (await h.http.get(`/scim/v2/Users/${body.id}`)) as unknown as Res;
    expect(got.status).toBe(200);
    expect(got.headers['content-type']).toMatch(SCIM_CONTENT_TYPE);
    expect(got.headers.etag).toBe((got.body.meta as Record<string, string>).version);
    expect(got.body).toMatchObject({ id: body.id, userName, externalId: 'ext-core-1', title: 'Countess' });
    expect(got.text).not.toContain('Pa55word');
  });

  it('answers 409 uniqueness for a duplicate userName in another letter case', async () => {
    const userName = uniqueName('core.dup');
    await create(userName);
    const again = (await h.http
      .post('/scim/v2/Users')
      .send(userBody(userName.toUpperCase()))) as unknown as Res;
    expectScimError(again, 409, 'uniqueness');
    expect((await h.upstream()).users.filter((u) => u.UserName.toLowerCase() === userName)).toHaveLength(1);
  });

  it('PATCHes attributes and pushes the mapped ones upstream', async () => {
    const userName = uniqueName('core.patch');
    const user = await create(userName);
    const newMail = uniqueName('core.patch.mail');
    const res = (await h.http
      .patch(`/scim/v2/Users/${user.id}`)
      .send(
        patchBody(
          { op: 'replace', path: 'displayName', value: 'Patched Name' },
          { op: 'replace', path: 'emails[type eq "work"].value', value: newMail },
          { op: 'add', path: 'title', value: 'Engineer' },
          { op: 'remove', path: 'name.givenName' },
        ),
      )) as unknown as Res;
    expect(res.status, res.text).toBe(200);
    expect(res.headers.etag).toBe((res.body.meta as Record<string, string>).version);
    expect(res.body).toMatchObject({ displayName: 'Patched Name', title: 'Engineer', id: user.id });
    expect((res.body.emails as Array<{ value: string }>)[0].value).toBe(newMail);
    expect((res.body.name as Record<string, unknown>).givenName).toBeUndefined();
    expect(await upstreamUser(userName)).toMatchObject({ DisplayName: 'Patched Name', Email: newMail });
  });

  it('PUT replaces the user, ignores readOnly input and rejects an id mismatch', async () => {
    const userName = uniqueName('core.put');
    const user = await create(userName, { title: 'Before', phoneNumbers: [{ value: '123', type: 'work' }] });
    const res = (await h.http.put(`/scim/v2/Users/${user.id}`).send({
      schemas: [USER_SCHEMA],
      id: user.id,
      userName,
      displayName: 'After Put',
      active: true,
      meta: { resourceType: 'User', created: '2000-01-01T00:00:00Z', version: 'W/"999"' },
    })) as unknown as Res;
    expect(res.status, res.text).toBe(200);
    expect(res.body.title).toBeUndefined();
    expect(res.body.phoneNumbers).toBeUndefined();
    expect(res.body.displayName).toBe('After Put');
    expect((res.body.meta as Record<string, string>).created).not.toBe('2000-01-01T00:00:00Z');
    expect((res.body.meta as Record<string, string>).version).not.toBe('W/"999"');
    expect(await upstreamUser(userName)).toMatchObject({ DisplayName: 'After Put', Phone: '' });

    const mismatch = (await h.http
      .put(`/scim/v2/Users/${user.id}`)
      .send({ schemas: [USER_SCHEMA], id: 'someone-else', userName })) as unknown as Res;
    expectScimError(mismatch, 400, 'mutability');

    const missing = (await h.http
      .put('/scim/v2/Users/does-not-exist')
      .send({ schemas: [USER_SCHEMA], userName: uniqueName('core.put.missing') })) as unknown as Res;
    expectScimError(missing, 404);
  });

  it('concurrent PATCHes without If-Match all apply (no spurious 412)', async () => {
    const userName = uniqueName('core.concurrent');
    const user = await create(userName);
    const attributes = ['title', 'nickName', 'locale', 'userType', 'preferredLanguage'];
    const results = await Promise.all(
      attributes.map((path) =>
        h.http.patch(`/scim/v2/Users/${user.id}`).send(patchBody({ op: 'add', path, value: `v-${path}` })),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(attributes.map(() => 200));
    const got = (await h.http.get(`/scim/v2/Users/${user.id}`)) as unknown as Res;
    for (const path of attributes) expect(got.body[path], path).toBe(`v-${path}`);
    const puts = await Promise.all(
      ['A', 'B'].map((t) =>
        h.http.put(`/scim/v2/Users/${user.id}`).send(userBody(userName, { displayName: t })),
      ),
    );
    expect(puts.map((r) => r.status)).toEqual([200, 200]);
    const final = (await h.http.get(`/scim/v2/Users/${user.id}`)) as unknown as Res;
    expect(['A', 'B']).toContain(final.body.displayName);
    expect((await upstreamUser(userName))?.DisplayName).toBe(final.body.displayName);
  });

  it('renames a user (userName) and frees the old name', async () => {
    const userName = uniqueName('core.rename');
    const renamed = uniqueName('core.renamed');
    const user = await create(userName);
    const res = (await h.http
      .patch(`/scim/v2/Users/${user.id}`)
      .send(patchBody({ op: 'replace', path: 'userName', value: renamed }))) as unknown as Res;
    expect(res.status, res.text).toBe(200);
    expect(res.body.userName).toBe(renamed);
    expect(await upstreamUser(renamed)).toBeDefined();
    expect(await upstreamUser(userName)).toBeUndefined();
    await create(userName);
    // and a rename onto a taken name is a 409
    const clash = (await h.http
      .patch(`/scim/v2/Users/${user.id}`)
      .send(patchBody({ op: 'replace', path: 'userName', value: userName.toUpperCase() }))) as unknown as Res;
    expectScimError(clash, 409, 'uniqueness');
  });

  it('deactivates (delete mode): upstream user gone, still readable, filterable and listed with active false', async () => {
    const userName = uniqueName('core.deact');
    const user = await create(userName, { externalId: 'ext-deact' });
    const res = (await h.http
      .patch(`/scim/v2/Users/${user.id}`)
      .send(patchBody({ op: 'replace', path: 'active', value: false }))) as unknown as Res;
    expect(res.status, res.text).toBe(200);
    expect(res.body.active).toBe(false);
    expect(await upstreamUser(userName)).toBeUndefined();

    const got = (await h.http.get(`/scim/v2/Users/${user.id}`)) as unknown as Res;
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: user.id, userName, active: false, externalId: 'ext-deact' });
    expect((got.body.name as Record<string, string>).givenName).toBe('Given');

    for (const filter of [
      `userName eq "${userName.toUpperCase()}"`,
      `externalId eq "ext-deact" and userName eq "${userName}"`,
      `id eq "${user.id}"`,
    ]) {
      const list = (await h.http.get(filterUrl(filter))) as unknown as Res;
      expectListResponse(list);
      expect(list.body.totalResults, filter).toBe(1);
      expect((list.body.Resources as Array<Record<string, unknown>>)[0]).toMatchObject({
        id: user.id,
        active: false,
      });
    }
    const all = (await h.http.get('/scim/v2/Users?count=1000')) as unknown as Res;
    expect((all.body.Resources as Array<{ id: string }>).map((r) => r.id)).toContain(user.id);
  });

  it('reactivates with the same SCIM id, re-creates the upstream user and restores memberships', async () => {
    const userName = uniqueName('core.react');
    const user = await create(userName, { displayName: 'React Ivate' });
    const first = await upstreamUser(userName);
    // A membership the bridge knows about (the store mirror) and CloudIdentity holds.
    const group = await h.client.createGroup({ GroupName: `g-${user.id.slice(0, 8)}`, JoinType: 'Manual' });
    await h.store.insertGroup({
      scimId: group.GroupId,
      groupName: group.GroupName,
      displayName: group.GroupName,
      externalId: null,
      attributes: {},
    });
    await h.store.addMembership(group.GroupId, user.id);
    await h.client.addUserToGroup({ GroupId: group.GroupId, UserId: first!.UserId });

    const off = (await h.http
      .patch(`/scim/v2/Users/${user.id}`)
      .send(patchBody({ op: 'replace', value: { active: false } }))) as unknown as Res;
    expect(off.status, off.text).toBe(200);
    expect(off.body.active).toBe(false);
    let state = await h.upstream();
    expect(state.users.find((u) => u.UserId === first!.UserId)).toBeUndefined();
    expect(state.memberships.filter((m) => m.GroupId === group.GroupId)).toHaveLength(0);

    const on = (await h.http
      .patch(`/scim/v2/Users/${user.id}`)
      .send(patchBody({ op: 'replace', value: { active: true } }))) as unknown as Res;
    expect(on.status, on.text).toBe(200);
    expect(on.body).toMatchObject({ id: user.id, active: true, displayName: 'React Ivate', userName });
    state = await h.upstream();
    const second = state.users.find((u) => u.UserName === userName);
    expect(second).toBeDefined();
    expect(second!.UserId).not.toBe(first!.UserId);
    expect(second).toMatchObject({ DisplayName: 'React Ivate', Email: userName });
    expect(state.memberships).toContainEqual({ GroupId: group.GroupId, UserId: second!.UserId });

    const got = (await h.http.get(`/scim/v2/Users/${user.id}`)) as unknown as Res;
    expect(got.body).toMatchObject({ id: user.id, active: true });
    // The new UserId is not a second user.
    expectScimError((await h.http.get(`/scim/v2/Users/${second!.UserId}`)) as unknown as Res, 404);
    const list = (await h.http.get(filterUrl(`userName eq "${userName}"`))) as unknown as Res;
    expect(list.body.totalResults).toBe(1);
  });

  it('DELETE: 204, then 404 everywhere, upstream gone, userName free again', async () => {
    const userName = uniqueName('core.delete');
    const user = await create(userName);
    const del = await h.http.delete(`/scim/v2/Users/${user.id}`);
    expect(del.status).toBe(204);
    expect(del.text).toBe('');
    expectScimError((await h.http.get(`/scim/v2/Users/${user.id}`)) as unknown as Res, 404);
    expectScimError((await h.http.delete(`/scim/v2/Users/${user.id}`)) as unknown as Res, 404);
    expectScimError(
      (await h.http
        .patch(`/scim/v2/Users/${user.id}`)
        .send(patchBody({ op: 'replace', path: 'title', value: 'x' }))) as unknown as Res,
      404,
    );
    const list = (await h.http.get(filterUrl(`userName eq "${userName}"`))) as unknown as Res;
    expect(list.body.totalResults).toBe(0);
    expect(await upstreamUser(userName)).toBeUndefined();
    const again = await create(userName);
    expect(again.id).not.toBe(user.id);
  });

  it('DELETE of a deactivated user removes the tombstone', async () => {
    const userName = uniqueName('core.delete.deact');
    const user = await create(userName);
    await h.http
      .patch(`/scim/v2/Users/${user.id}`)
      .send(patchBody({ op: 'replace', path: 'active', value: false }));
    expect((await h.http.delete(`/scim/v2/Users/${user.id}`)).status).toBe(204);
    expectScimError((await h.http.get(`/scim/v2/Users/${user.id}`)) as unknown as Res, 404);
    expect((await h.http.get(filterUrl(`userName eq "${userName}"`))).body.totalResults).toBe(0);
    await create(userName);
  });

  it('creating an inactive user keeps it out of CloudIdentity (delete mode) but readable', async () => {
    const userName = uniqueName('core.inactive');
    const user = await create(userName, { active: false });
    expect(user.active).toBe(false);
    expect(await upstreamUser(userName)).toBeUndefined();
    expect((await h.http.get(`/scim/v2/Users/${user.id}`)).body).toMatchObject({ active: false, userName });
    // and a second create of that name is still a conflict
    expectScimError(
      (await h.http.post('/scim/v2/Users').send(userBody(userName))) as unknown as Res,
      409,
      'uniqueness',
    );
  });

  describe('DEACTIVATE_ACTION=retain', () => {
    it('keeps the upstream user on active false; GET and filter still say active false', async () => {
      const userName = uniqueName('core.retain');
      const created = (await retain.http.post('/scim/v2/Users').send(userBody(userName))) as unknown as Res;
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      const before = await upstreamUser(userName);
      const callsBefore = h.emulator.calls();
      const off = (await retain.http
        .patch(`/scim/v2/Users/${id}`)
        .send(patchBody({ op: 'Replace', path: 'active', value: 'False' }))) as unknown as Res;
      expect(off.status, off.text).toBe(200);
      expect(off.body.active).toBe(false);
      expect(h.emulator.calls().DeleteUser ?? 0).toBe(callsBefore.DeleteUser ?? 0);
      expect(await upstreamUser(userName)).toMatchObject({ UserId: before!.UserId });

      expect((await retain.http.get(`/scim/v2/Users/${id}`)).body).toMatchObject({ active: false });
      const list = (await retain.http.get(filterUrl(`userName eq "${userName}"`))) as unknown as Res;
      expect(list.body.totalResults).toBe(1);
      expect((list.body.Resources as Array<Record<string, unknown>>)[0].active).toBe(false);
      const inactive = (await retain.http.get(
        filterUrl(`active eq false and userName eq "${userName}"`),
      )) as unknown as Res;
      expect(inactive.body.totalResults).toBe(1);

      const on = (await retain.http
        .patch(`/scim/v2/Users/${id}`)
        .send(patchBody({ op: 'replace', value: { active: true } }))) as unknown as Res;
      expect(on.body.active).toBe(true);
      expect(h.emulator.calls().CreateUser ?? 0).toBe(callsBefore.CreateUser ?? 0);
      expect(await upstreamUser(userName)).toMatchObject({ UserId: before!.UserId });
    });

    it('delete mode, by contrast, removes the upstream user', async () => {
      const userName = uniqueName('core.delmode');
      const user = await create(userName);
      await h.http
        .patch(`/scim/v2/Users/${user.id}`)
        .send(patchBody({ op: 'replace', path: 'active', value: false }));
      expect(await upstreamUser(userName)).toBeUndefined();
      const list = (await h.http.get(filterUrl(`userName eq "${userName}"`))) as unknown as Res;
      expect((list.body.Resources as Array<Record<string, unknown>>)[0].active).toBe(false);
    });
  });

  describe('ETag and If-Match', () => {
    it('ETag header equals meta.version and changes on every write', async () => {
      const user = await create(uniqueName('core.etag'));
      const got = (await h.http.get(`/scim/v2/Users/${user.id}`)) as unknown as Res;
      const v1 = got.headers.etag;
      expect(v1).toBe((got.body.meta as Record<string, string>).version);
      expect(v1).toMatch(/^W\/".+"$/);
      const patched = (await h.http
        .patch(`/scim/v2/Users/${user.id}`)
        .set('If-Match', v1)
        .send(patchBody({ op: 'replace', path: 'title', value: 'T1' }))) as unknown as Res;
      expect(patched.status, patched.text).toBe(200);
      expect(patched.headers.etag).not.toBe(v1);
      expect(patched.headers.etag).toBe((patched.body.meta as Record<string, string>).version);
    });

    it('a conditional GET with the current ETag in If-None-Match is 304 without a body; a stale one is 200', async () => {
      const user = await create(uniqueName('core.ifnonematch'));
      const got = (await h.http.get(`/scim/v2/Users/${user.id}`)) as unknown as Res;
      const current = got.headers.etag;
      const notModified = (await h.http
        .get(`/scim/v2/Users/${user.id}`)
        .set('If-None-Match', current)) as unknown as Res;
      expect(notModified.status).toBe(304);
      expect(notModified.text ?? '').toBe('');
      const stale = (await h.http
        .get(`/scim/v2/Users/${user.id}`)
        .set('If-None-Match', 'W/"stale"')) as unknown as Res;
      expect(stale.status).toBe(200);
      expect(stale.body.id).toBe(user.id);
      expect(stale.headers['content-type']).toMatch(SCIM_CONTENT_TYPE);
    });

    it('a stale If-Match on PUT, PATCH and DELETE is 412 and changes nothing', async () => {
      const userName = uniqueName('core.ifmatch');
      const user = await create(userName);
      const stale = (user.meta as Record<string, string>).version;
      await h.http
        .patch(`/scim/v2/Users/${user.id}`)
        .send(patchBody({ op: 'replace', path: 'title', value: 'new' }));

      const patch = (await h.http
        .patch(`/scim/v2/Users/${user.id}`)
        .set('If-Match', stale)
        .send(patchBody({ op: 'replace', path: 'title', value: 'lost' }))) as unknown as Res;
      expectScimError(patch, 412);
      const put = (await h.http
        .put(`/scim/v2/Users/${user.id}`)
        .set('If-Match', stale)
        .send(userBody(userName, { title: 'lost' }))) as unknown as Res;
      expectScimError(put, 412);
      const del = (await h.http.delete(`/scim/v2/Users/${user.id}`).set('If-Match', stale)) as unknown as Res;
      expectScimError(del, 412);

      const got = (await h.http.get(`/scim/v2/Users/${user.id}`)) as unknown as Res;
      expect(got.body.title).toBe('new');
      const current = got.headers.etag;
      const ok = await h.http
        .put(`/scim/v2/Users/${user.id}`)
        .set('If-Match', current)
        .send(userBody(userName, { title: 'won' }));
      expect(ok.status).toBe(200);
      expect((await h.http.delete(`/scim/v2/Users/${user.id}`).set('If-Match', '*')).status).toBe(204);
    });
  });

  describe('users created directly in CloudIdentity', () => {
    it('are readable and listable, with unknown attributes absent; PATCH adopts them', async () => {
      const userName = uniqueName('core.foreign');
      const foreign = await h.client.createUser({
        UserName: userName,
        DisplayName: 'Console Made',
        Email: userName,
        Description: 'made in the console',
      });
      const got = (await h.http.get(`/scim/v2/Users/${foreign.UserId}`)) as unknown as Res;
      expect(got.status, got.text).toBe(200);
      expect(got.headers.etag).toBe((got.body.meta as Record<string, string>).version);
      expect(got.body).toMatchObject({
        id: foreign.UserId,
        userName,
        displayName: 'Console Made',
        active: true,
        emails: [{ value: userName }],
      });
      expect(
        (got.body as LooseJson)['urn:volcengine:params:scim:schemas:extension:cloudidentity:2.0:User'],
      ).toMatchObject({
        description: 'made in the console',
        source: 'Manual',
      });
      for (const absent of ['externalId', 'name', 'title', 'phoneNumbers', ENTERPRISE]) {
        expect(got.body[absent], absent).toBeUndefined();
      }
      expect(got.text).not.toContain('null');

      const list = (await h.http.get(filterUrl(`userName eq "${userName.toUpperCase()}"`))) as unknown as Res;
      expect(list.body.totalResults).toBe(1);
      expect((list.body.Resources as Array<{ id: string }>)[0].id).toBe(foreign.UserId);
      const all = (await h.http.get('/scim/v2/Users?count=1000')) as unknown as Res;
      expect((all.body.Resources as Array<{ id: string }>).map((r) => r.id)).toContain(foreign.UserId);

      const patched = (await h.http
        .patch(`/scim/v2/Users/${foreign.UserId}`)
        .send(
          patchBody(
            { op: 'add', path: 'externalId', value: 'ext-foreign' },
            { op: 'replace', path: 'displayName', value: 'Adopted' },
          ),
        )) as unknown as Res;
      expect(patched.status, patched.text).toBe(200);
      expect(patched.body).toMatchObject({
        id: foreign.UserId,
        externalId: 'ext-foreign',
        displayName: 'Adopted',
      });
      expect(await upstreamUser(userName)).toMatchObject({ UserId: foreign.UserId, DisplayName: 'Adopted' });
      const byExt = (await h.http.get(filterUrl('externalId eq "ext-foreign"'))) as unknown as Res;
      expect((byExt.body.Resources as Array<{ id: string }>).map((r) => r.id)).toEqual([foreign.UserId]);
    });

    it('can be deactivated, reactivated (same SCIM id) and deleted', async () => {
      const userName = uniqueName('core.foreign.life');
      const foreign = await h.client.createUser({ UserName: userName, DisplayName: 'Foreign Life' });
      const off = (await h.http
        .patch(`/scim/v2/Users/${foreign.UserId}`)
        .send(patchBody({ op: 'replace', value: { active: false } }))) as unknown as Res;
      expect(off.status, off.text).toBe(200);
      expect(off.body).toMatchObject({ id: foreign.UserId, active: false });
      expect(await upstreamUser(userName)).toBeUndefined();
      expect(((await h.http.get(`/scim/v2/Users/${foreign.UserId}`)) as unknown as Res).body.active).toBe(
        false,
      );
      const on = (await h.http
        .patch(`/scim/v2/Users/${foreign.UserId}`)
        .send(patchBody({ op: 'replace', value: { active: true } }))) as unknown as Res;
      expect(on.status, on.text).toBe(200);
      expect(on.body).toMatchObject({ id: foreign.UserId, active: true, displayName: 'Foreign Life' });
      const recreated = await upstreamUser(userName);
      expect(recreated?.UserId).not.toBe(foreign.UserId);
      expectScimError((await h.http.get(`/scim/v2/Users/${recreated!.UserId}`)) as unknown as Res, 404);
      expect((await h.http.delete(`/scim/v2/Users/${foreign.UserId}`)).status).toBe(204);
      expect(await upstreamUser(userName)).toBeUndefined();
      expectScimError((await h.http.get(`/scim/v2/Users/${foreign.UserId}`)) as unknown as Res, 404);
    });

    it('an untouched foreign user can be deleted', async () => {
      const userName = uniqueName('core.foreign.del');
      const foreign = await h.client.createUser({ UserName: userName });
      expect((await h.http.delete(`/scim/v2/Users/${foreign.UserId}`)).status).toBe(204);
      expect(await upstreamUser(userName)).toBeUndefined();
      expectScimError((await h.http.get(`/scim/v2/Users/${foreign.UserId}`)) as unknown as Res, 404);
    });

    it('a userName only CloudIdentity knows is still a 409 on create', async () => {
      const userName = uniqueName('core.upstreamonly');
      await h.client.createUser({ UserName: userName });
      const res = (await h.http
        .post('/scim/v2/Users')
        .send(userBody(userName.toUpperCase()))) as unknown as Res;
      expectScimError(res, 409, 'uniqueness');
      // and no pending record is left behind: the name still resolves to the upstream user only
      const list = (await h.http.get(filterUrl(`userName eq "${userName}"`))) as unknown as Res;
      expect(list.body.totalResults).toBe(1);
    });
  });
});
