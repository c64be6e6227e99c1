// Okta, replayed (scim-idp-behaviour.md §3): the Runscope "SCIM 2.0 SPEC Test" steps in order,
// the create → PUT → deactivate → reactivate flow of an App Integration Wizard app, and import
// paging over a few hundred users.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';
import {
  ERROR_SCHEMA,
  expectListResponse,
  expectScimError,
  LIST_SCHEMA,
  type LooseJson,
  type Res,
  SCIM_CONTENT_TYPE,
  USER_SCHEMA,
  uniqueName,
} from './users-support.js';

type Json = LooseJson;
const OKTA_UA = 'Okta SCIM Client 1.0.0';

function oktaCreateBody(userName: string, given = 'Okta', family = 'Tester'): Json {
  return {
    schemas: [USER_SCHEMA],
    userName,
    name: { givenName: given, familyName: family },
    emails: [{ primary: true, value: userName, type: 'work' }],
    displayName: `${given} ${family}`,
    locale: 'en-US',
    externalId: `00u${randomUUID().replace(/-/g, '').slice(0, 17)}`,
    groups: [],
    password: 'tl5#Vq9!randomOktaPassword',
    active: true,
  };
}

describe('Okta request sequences', () => {
  let h: Harness;
  let existing: Json;
  beforeAll(async () => {
    h = await startHarness();
    // "At least one user must already exist."
    const res = await h.http
      .post('/scim/v2/Users')
      .send(oktaCreateBody(uniqueName('okta.existing'), 'Exist', 'Ing'));
    expect(res.status).toBe(201);
    existing = res.body;
  });
  afterAll(async () => {
    await h?.close();
  });

  const okta = () => ({
    get: (url: string) =>
      h.http
        .get(url)
        .set('Accept', 'application/scim+json')
        .set('User-Agent', OKTA_UA) as unknown as Promise<Res>,
    post: (url: string, body: Json) =>
      h.http
        .post(url)
        .set('Accept', 'application/scim+json')
        .set('Content-Type', 'application/json')
        .set('User-Agent', OKTA_UA)
        .send(JSON.stringify(body)) as unknown as Promise<Res>,
  });
  const upstreamOf = async (userName: string) =>
    (await h.upstream()).users.find((u) => u.UserName.toLowerCase() === userName.toLowerCase());

  it('passes the SCIM 2.0 SPEC Test steps in order', async () => {
    const { get, post } = okta();
    const requireUserFields = (u: Json) => {
      expect(typeof u.id).toBe('string');
      expect(u.id.length).toBeGreaterThan(0);
      expect(u.name.familyName).toBeTruthy();
      expect(u.name.givenName).toBeTruthy();
      expect(u.userName).toBeTruthy();
      expect(typeof u.active).toBe('boolean');
      expect(u.emails[0].value).toBeTruthy();
    };

    // 1. Test Users endpoint
    const s1 = await get('/scim/v2/Users?count=1&startIndex=1');
    expectListResponse(s1);
    expect(typeof s1.body.itemsPerPage).toBe('number');
    expect(typeof s1.body.startIndex).toBe('number');
    expect(typeof s1.body.totalResults).toBe('number');
    expect(s1.body.Resources).toHaveLength(1);
    const first = s1.body.Resources[0] as Json;
    requireUserFields(first);

    // 2. Get Users/{id}
    const s2 = await get(`/scim/v2/Users/${first.id}`);
    expect(s2.status).toBe(200);
    requireUserFields(s2.body);
    expect(s2.body.id).toBe(first.id);

    // 3. Invalid user by username
    const s3 = await get(
      `/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${uniqueName('invalid')}"`)}`,
    );
    expectListResponse(s3);
    expect(s3.body.totalResults).toBe(0);

    // 4. Invalid user by id
    const s4 = await get(`/scim/v2/Users/${randomUUID()}`);
    expectScimError(s4, 404);

    // 5. Random user doesn't exist
    const randomUsername = uniqueName('okta.random');
    const s5 = await get(`/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${randomUsername}"`)}`);
    expect(s5.status).toBe(200);
    expect(s5.body.totalResults).toBe(0);

    // 6. Create user (application/json)
    const s6 = await post('/scim/v2/Users', oktaCreateBody(randomUsername, 'Rand', 'Om'));
    expect(s6.status, s6.text).toBe(201);
    expect(s6.headers['content-type']).toMatch(SCIM_CONTENT_TYPE);
    expect(s6.body.active).toBe(true);
    expect(s6.body.id).toBeTruthy();
    expect(s6.body.name).toMatchObject({ givenName: 'Rand', familyName: 'Om' });
    expect(s6.body.schemas).toContain(USER_SCHEMA);
    expect(s6.body.userName).toBe(randomUsername);
    expect(s6.text).not.toContain('randomOktaPassword');

    // 7. Verify created
    const s7 = await get(`/scim/v2/Users/${s6.body.id}`);
    expect(s7.status).toBe(200);
    expect(s7.body.userName).toBe(randomUsername);
    expect(s7.body.name).toMatchObject({ givenName: 'Rand', familyName: 'Om' });

    // 8. Recreate the same user
    const s8 = await post('/scim/v2/Users', oktaCreateBody(randomUsername, 'Rand', 'Om'));
    expectScimError(s8, 409, 'uniqueness');

    // 9. Username case sensitivity: the all-caps name finds the user
    const s9 = await get(
      `/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${randomUsername.toUpperCase()}"`)}`,
    );
    expect(s9.status).toBe(200);
    expect(s9.body.totalResults).toBe(1);
    expect(s9.body.Resources[0].id).toBe(s6.body.id);

    // 11. 401 check: a header that is not a bearer token, and a wrong token
    for (const auth of ['non-token', 'Bearer wrong-token-0123456789']) {
      const s11 = (await h.http
        .get('/scim/v2/Users?count=1&startIndex=1')
        .set('Authorization', auth)
        .set('Accept', 'application/scim+json')) as unknown as Res;
      expectScimError(s11, 401);
      expect(s11.body.status).toBe('401');
      expect(s11.headers['www-authenticate']).toMatch(/^Bearer/);
    }

    // 12. 404 check
    const s12 = await get('/scim/v2/Users/00919288221112222');
    expectScimError(s12, 404);
    expect(s12.body.schemas).toEqual([ERROR_SCHEMA]);
  });

  it('create → PUT → deactivate → reactivate keeps the SCIM id and re-creates the upstream user', async () => {
    const { get, post } = okta();
    const userName = uniqueName('okta.flow');
    const created = await post('/scim/v2/Users', oktaCreateBody(userName, 'Flow', 'User'));
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const firstUpstream = await upstreamOf(userName);
    expect(firstUpstream).toMatchObject({ DisplayName: 'Flow User', Email: userName });

    // A membership the bridge knows of, to see it restored.
    const group = await h.client.createGroup({ GroupName: `okta-${id.slice(0, 8)}`, JoinType: 'Manual' });
    await h.store.insertGroup({
      scimId: group.GroupId,
      groupName: group.GroupName,
      displayName: group.GroupName,
      externalId: null,
      attributes: {},
    });
    await h.store.addMembership(group.GroupId, id);
    await h.client.addUserToGroup({ GroupId: group.GroupId, UserId: firstUpstream!.UserId });

    // Profile update: GET, then PUT the whole object back (id, meta, groups: [], password).
    const read = await get(`/scim/v2/Users/${id}`);
    const put = (await h.http
      .put(`/scim/v2/Users/${id}`)
      .set('Content-Type', 'application/json')
      .set('User-Agent', OKTA_UA)
      .send(
        JSON.stringify({
          ...read.body,
          name: { givenName: 'Flowing', familyName: 'User' },
          displayName: 'Flowing User',
          groups: [],
          password: 'another#Password1',
        }),
      )) as unknown as Res;
    expect(put.status, put.text).toBe(200);
    expect(put.body).toMatchObject({
      id,
      active: true,
      displayName: 'Flowing User',
      name: { givenName: 'Flowing' },
    });
    expect(put.body.locale).toBe('en-US');
    expect(put.text).not.toContain('Password1');
    expect(await upstreamOf(userName)).toMatchObject({
      UserId: firstUpstream!.UserId,
      DisplayName: 'Flowing User',
    });

    // OIN templates PATCH the password: accepted, never stored or returned
    const pw = (await h.http.patch(`/scim/v2/Users/${id}`).send({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', value: { password: 'yet#another1' } }],
    })) as unknown as Res;
    expect(pw.status, pw.text).toBe(200);
    expect(pw.text).not.toContain('another1');

    // Deactivate: path-less replace {active: false}
    const off = (await h.http
      .patch(`/scim/v2/Users/${id}`)
      .set('Content-Type', 'application/json')
      .send({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'replace', value: { active: false } }],
      })) as unknown as Res;
    expect(off.status, off.text).toBe(200);
    expect(off.body).toMatchObject({ id, active: false, displayName: 'Flowing User' });
    let state = await h.upstream();
    expect(state.users.find((u) => u.UserName === userName)).toBeUndefined();
    expect((await get(`/scim/v2/Users/${id}`)).body.active).toBe(false);

    // Reactivate
    const on = (await h.http
      .patch(`/scim/v2/Users/${id}`)
      .set('Content-Type', 'application/json')
      .send({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'replace', value: { active: true } }],
      })) as unknown as Res;
    expect(on.status, on.text).toBe(200);
    expect(on.body).toMatchObject({ id, active: true, displayName: 'Flowing User', userName });
    state = await h.upstream();
    const again = state.users.find((u) => u.UserName === userName);
    expect(again).toMatchObject({ DisplayName: 'Flowing User', Email: userName });
    expect(again!.UserId).not.toBe(firstUpstream!.UserId);
    expect(state.memberships).toContainEqual({ GroupId: group.GroupId, UserId: again!.UserId });

    // An AIW app deactivates with PUT active: false too.
    const current = await get(`/scim/v2/Users/${id}`);
    const putOff = (await h.http
      .put(`/scim/v2/Users/${id}`)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ ...current.body, active: false }))) as unknown as Res;
    expect(putOff.status, putOff.text).toBe(200);
    expect(putOff.body.active).toBe(false);
    expect(await upstreamOf(userName)).toBeUndefined();
    const putOn = (await h.http
      .put(`/scim/v2/Users/${id}`)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ ...current.body, active: true }))) as unknown as Res;
    expect(putOn.body).toMatchObject({ id, active: true });
    expect(await upstreamOf(userName)).toBeDefined();
  });

  it('imports a few hundred users with startIndex/count pages: integers, stable order, no duplicates, all users', async () => {
    const { get, post } = okta();
    h.emulator.seedUsers(280, `okta-import-${randomUUID().slice(0, 6)}-`);
    const deactivated: string[] = [];
    const createdIds: string[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await post('/scim/v2/Users', oktaCreateBody(uniqueName(`okta.import${i}`)));
      expect(res.status).toBe(201);
      createdIds.push(res.body.id);
      if (i % 3 === 0) {
        const off = await h.http.patch(`/scim/v2/Users/${res.body.id}`).send({
          schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
          Operations: [{ op: 'replace', value: { active: false } }],
        });
        expect(off.status).toBe(200);
        deactivated.push(res.body.id);
      }
    }

    const importAll = async () => {
      const seen: string[] = [];
      let total = Number.POSITIVE_INFINITY;
      for (let startIndex = 1; startIndex <= total; startIndex += 100) {
        const before = h.emulator.calls().ListUsers ?? 0;
        const page = await get(`/scim/v2/Users?startIndex=${startIndex}&count=100`);
        // One aligned page of 100 is one ListUsers call (PageSize 100), whatever the directory size.
        expect((h.emulator.calls().ListUsers ?? 0) - before).toBe(1);
        expectListResponse(page);
        expect(page.body.schemas).toEqual([LIST_SCHEMA]);
        expect(page.body.startIndex).toBe(startIndex);
        if (total !== Number.POSITIVE_INFINITY) expect(page.body.totalResults).toBe(total);
        total = page.body.totalResults;
        expect(page.body.itemsPerPage).toBe((page.body.Resources ?? []).length);
        expect(page.body.itemsPerPage).toBe(Math.min(100, total - startIndex + 1));
        seen.push(...(page.body.Resources as Json[]).map((r) => r.id as string));
      }
      return { seen, total };
    };
    const { seen, total } = await importAll();
    const state = await h.upstream();
    expect(total).toBe(state.users.length + deactivated.length);
    expect(total).toBeGreaterThan(290);
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);
    for (const id of [...createdIds, existing.id]) expect(seen).toContain(id);
    // every upstream user appears (under its SCIM id, which is the UserId for foreign users)
    const foreign = state.users.filter((u) => u.UserName.startsWith('okta-import-'));
    for (const u of foreign) expect(seen).toContain(u.UserId);

    const secondRun = await importAll();
    expect(secondRun.seen).toEqual(seen);

    // deactivated users are included and say so
    const page = await get(`/scim/v2/Users?startIndex=${seen.indexOf(deactivated[0]) + 1}&count=1`);
    expect(page.body.Resources[0]).toMatchObject({ id: deactivated[0], active: false });
  });
});
