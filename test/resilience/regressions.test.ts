// Deterministic reproductions of what the soak, the restart test and the fuzzer found, one per fix.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});
afterEach(() => {
  h.emulator.setFaults([]);
});

function expectScimError(
  res: { status: number; body: Record<string, unknown>; headers: Record<string, string> },
  status: number,
) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/scim\+json/);
  expect(res.body.schemas).toEqual([ERROR_SCHEMA]);
  expect(res.body.status).toBe(String(status));
}

/** A short unique name (CloudIdentity UserName ≤ 54 characters). */
const unique = (prefix: string) => `${prefix}.${randomBytes(4).toString('hex')}@example.com`;
const filterUrl = (userName: string) =>
  `/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${userName}"`)}`;

describe('fuzzer findings: 500s on hostile input are now 400s', () => {
  it('a path segment that is not valid percent-encoding (GET /Users/%, /Groups/%)', async () => {
    expectScimError(await h.http.get('/scim/v2/Users/%'), 400);
    expectScimError(await h.http.get('/scim/v2/Groups/%'), 400);
  });

  it('a PATCH op that is an object without a callable toString', async () => {
    const u = await h.http.post('/scim/v2/Users').send({ schemas: [USER_SCHEMA], userName: unique('reg') });
    const g = await h.http
      .post('/scim/v2/Groups')
      .send({ schemas: [GROUP_SCHEMA], displayName: `reg-${randomUUID()}` });
    const body = { schemas: [PATCH_OP], Operations: [{ op: { toString: null } }] };
    expectScimError(await h.http.patch(`/scim/v2/Users/${u.body.id}`).send(body), 400);
    expectScimError(await h.http.patch(`/scim/v2/Groups/${g.body.id}`).send(body), 400);
  });

  it('.search with count, startIndex or attributes of the wrong type', async () => {
    for (const body of [
      { count: { toString: null } },
      { startIndex: { toString: null } },
      { attributes: [{ toString: null }] },
    ]) {
      expectScimError(await h.http.post('/scim/v2/Users/.search').send(body), 400);
      expectScimError(await h.http.post('/scim/v2/Groups/.search').send(body), 400);
    }
  });

  it('a body nested thousands of levels deep', async () => {
    const deep = `{"userName":"x","emails":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    const res = await h.http.post('/scim/v2/Users').set('Content-Type', 'application/scim+json').send(deep);
    expectScimError(res, 400);
    expect(res.body.scimType).toBe('invalidSyntax');
  });
});

describe('fuzzer finding: a page past the end while deactivated users exist', () => {
  it('is an empty ListResponse, not a 500 (negative LIMIT on the tombstone page)', async () => {
    const u = await h.http.post('/scim/v2/Users').send({ userName: unique('tomb'), active: false });
    expect(u.status).toBe(201);
    const total = (await h.http.get('/scim/v2/Users?count=0')).body.totalResults as number;
    for (const start of [total + 1, total + 50, 2 ** 53]) {
      const page = await h.http.get(`/scim/v2/Users?startIndex=${start}`);
      expect(page.status, page.text).toBe(200);
      expect(page.body).toMatchObject({ totalResults: total, itemsPerPage: 0, Resources: [] });
    }
  });
});

describe('fuzzer finding: NUL characters (PostgreSQL text cannot hold U+0000)', () => {
  it('are refused before anything changes: in a body, a PATCH value, a filter', async () => {
    expectScimError(
      await h.http.post('/scim/v2/Users').send({ userName: unique('nul'), name: { givenName: 'a\u0000b' } }),
      400,
    );
    const userName = unique('nul');
    const u = await h.http.post('/scim/v2/Users').send({ userName, displayName: 'before' });
    const patch = await h.http
      .patch(`/scim/v2/Users/${u.body.id}`)
      .send({ schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'displayName', value: 'a\u0000b' }] });
    expectScimError(patch, 400);
    expect((await h.upstream()).users.find((x) => x.UserName === userName)?.DisplayName).toBe('before');
    expectScimError(await h.http.get(filterUrl('a\u0000b')), 400);
    expectScimError(
      await h.http.get(`/scim/v2/Groups?filter=${encodeURIComponent('displayName eq "a\u0000b"')}`),
      400,
    );
  });
});

describe('soak findings: a create whose answer was lost keeps its attributes', () => {
  const attempts = 4; // the harness client makes 4 attempts per call (UPSTREAM_MAX_ATTEMPTS default)

  it('CreateUser committed, then every retry failed: 201, the user has its attributes and a record', async () => {
    const userName = unique('lost.answer');
    h.emulator.setFaults([
      { action: 'CreateUser', probability: 1, fault: 'commitThenReset', times: 1 },
      { action: 'CreateUser', probability: 1, fault: 'InternalError', times: attempts - 1 },
    ]);
    const res = await h.http.post('/scim/v2/Users').send({
      schemas: [USER_SCHEMA],
      userName,
      externalId: 'ext-1',
      name: { givenName: 'Lost', familyName: 'Answer' },
      title: 'kept',
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      userName,
      externalId: 'ext-1',
      title: 'kept',
      name: { givenName: 'Lost' },
    });
    expect(await h.store.getUser(res.body.id)).toMatchObject({ state: 'ready' });
  });

  it('...and when the check fails too, the record stays pending and the IdP match finishes it', async () => {
    const userName = unique('lost.check');
    h.emulator.setFaults([
      { action: 'CreateUser', probability: 1, fault: 'commitThenReset', times: 1 },
      { action: 'CreateUser', probability: 1, fault: 'InternalError', times: attempts - 1 },
      { action: 'ListUsers', probability: 1, fault: 'InternalError', times: attempts },
    ]);
    const post = await h.http
      .post('/scim/v2/Users')
      .send({ schemas: [USER_SCHEMA], userName, externalId: 'ext-2', title: 'kept' });
    // Whether the account is ours cannot be told yet: 503 with Retry-After, the record kept pending.
    expect(post.status, post.text).toBe(503);
    expect(post.headers['retry-after']).toBeDefined();
    h.emulator.setFaults([]);
    // Entra and Okta match by userName before they create again.
    const match = await h.http.get(filterUrl(userName));
    expect(match.status).toBe(200);
    expect(match.body.totalResults).toBe(1);
    expect(match.body.Resources[0]).toMatchObject({
      userName,
      externalId: 'ext-2',
      title: 'kept',
      active: true,
    });
    expect(await h.store.getUser(match.body.Resources[0].id)).toMatchObject({ state: 'ready' });
  });

  it('CreateGroup committed, then every retry failed: 201 with its externalId', async () => {
    const displayName = `lost-group-${randomUUID()}`;
    h.emulator.setFaults([
      { action: 'CreateGroup', probability: 1, fault: 'commitThenReset', times: 1 },
      { action: 'CreateGroup', probability: 1, fault: 'InternalError', times: attempts - 1 },
    ]);
    const res = await h.http
      .post('/scim/v2/Groups')
      .send({ schemas: [GROUP_SCHEMA], displayName, externalId: 'g-ext' });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ displayName, externalId: 'g-ext' });
  });
});

describe('restart finding: a create interrupted by a crash after CreateUser committed', () => {
  it('the IdP match finishes the pending record: the SCIM id and attributes survive, later writes work', async () => {
    const userName = unique('crashed');
    const scimId = randomUUID();
    // What a SIGKILL between CreateUser and the store update leaves behind.
    await h.store.insertUser({
      scimId,
      upstreamUserId: null,
      userName,
      externalId: 'ext-3',
      active: true,
      state: 'pending',
      attributes: { userName, title: 'before the crash' },
      tombstoneGroupIds: [],
    });
    await h.client.createUser({ UserName: userName, DisplayName: userName });
    const match = await h.http.get(filterUrl(userName));
    expect(match.body.totalResults).toBe(1);
    expect(match.body.Resources[0]).toMatchObject({
      id: scimId,
      externalId: 'ext-3',
      title: 'before the crash',
    });
    const patch = await h.http
      .patch(`/scim/v2/Users/${scimId}`)
      .send({ schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
    expect(patch.status, patch.text).toBe(200);
    expect((await h.upstream()).users.some((u) => u.UserName === userName)).toBe(false);
  });
});
