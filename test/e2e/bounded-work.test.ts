// Issue 11, finding 8: one request cannot stall the process or the upstream. Filters are planned
// under a complexity budget, member lists are bounded and resolved a batch at a time, and a user
// or group record has a size limit; each refusal comes before any upstream call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';
import { expectScimError, filterUrl, patchBody, type Res, uniqueName, userBody } from './users-support.js';

const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
type Json = Record<string, unknown>;

/** `first` joined by `joiner` as often as fits in `limit` characters (the filter length limit). */
function repeatedUpTo(first: string, joiner: string, limit = 2000): string {
  let f = first;
  while ((f + joiner + first).length <= limit) f += joiner + first;
  return f;
}

function unknownIds(n: number): Json[] {
  return Array.from({ length: n }, (_, i) => ({ value: `no-such-user-${String(i).padStart(6, '0')}` }));
}

describe('bounded work per request', () => {
  let h: Harness;
  const get = (url: string) => h.http.get(url) as unknown as Promise<Res>;
  const calls = async () => (await h.upstream()).calls;
  const delta = (before: Record<string, number>, after: Record<string, number>, action: string) =>
    (after[action] ?? 0) - (before[action] ?? 0);

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  describe('filters', () => {
    it("the issue's combinatorial filter at the maximum length is a 400 'too complex', and /healthz answers meanwhile", async () => {
      const filter = repeatedUpTo('(title eq "0" or nickName eq "0")', ' and ');
      expect(filter.length).toBeGreaterThan(1950);
      const [res, health] = await Promise.all([get(filterUrl(filter)), get('/healthz')]);
      expectScimError(res, 400, 'invalidFilter');
      expect(res.body.detail).toMatch(/^filter is too complex: it expands to more than 100 alternatives/);
      expect(health.status).toBe(200);
      // The same shape within the budget (2^5 = 32 alternatives) is planned and answered.
      const small = Array(5).fill('(title eq "0" or nickName eq "0")').join(' and ');
      const ok = await get(filterUrl(`userName eq "nobody-here" and ${small}`));
      expect(ok.status, ok.text).toBe(200);
      expect(ok.body.totalResults).toBe(0);
    });

    it('deep nesting is a 400 naming the depth limit, not a stack overflow', async () => {
      for (const filter of [
        `${'('.repeat(990)}userName eq "x"${')'.repeat(990)}`,
        `${'not ('.repeat(330)}userName eq "x"${')'.repeat(330)}`,
        '('.repeat(2000),
      ]) {
        const res = await get(filterUrl(filter));
        expectScimError(res, 400, 'invalidFilter');
        expect(res.body.detail).toMatch(/^filter is too complex: .*nest deeper than 16 levels/);
        expect(res.body.detail).not.toMatch(/call stack/i);
      }
    });

    it('long OR chains: 60 userName lookups answer, more than 100 branches are a 400', async () => {
      const name = uniqueName('bounded.or');
      expect((await h.http.post('/scim/v2/Users').send(userBody(name))).status).toBe(201);
      const branches = Array.from({ length: 59 }, (_, i) => `userName eq "absent-${i}"`);
      const ok = await get(filterUrl([...branches, `userName eq "${name}"`].join(' or ')));
      expect(ok.status, ok.text).toBe(200);
      expect(ok.body.totalResults).toBe(1);
      const longest = repeatedUpTo('title eq "0"', ' or ');
      const res = await get(filterUrl(longest));
      expectScimError(res, 400, 'invalidFilter');
      expect(res.body.detail).toMatch(/^filter is too complex/);
    });
  });

  describe('group member lists', () => {
    let groupId: string;
    beforeAll(async () => {
      const res = await h.http
        .post('/scim/v2/Groups')
        .send({ schemas: [GROUP_SCHEMA], displayName: 'bounded members' });
      expect(res.status).toBe(201);
      groupId = res.body.id;
    });

    it('more members than MAX_MEMBERS_PER_REQUEST in a PATCH, POST or PUT is a 400 before any upstream call', async () => {
      const before = await calls();
      const patch = (await h.http
        .patch(`/scim/v2/Groups/${groupId}`)
        .send(patchBody({ op: 'add', path: 'members', value: unknownIds(1001) }))) as unknown as Res;
      expectScimError(patch, 400, 'invalidValue');
      expect(patch.body.detail).toMatch(/1001 member values .*at most 1000 .*MAX_MEMBERS_PER_REQUEST/);
      // Counted over all operations of the request.
      const split = (await h.http
        .patch(`/scim/v2/Groups/${groupId}`)
        .send(
          patchBody(
            { op: 'add', path: 'members', value: unknownIds(600) },
            { op: 'remove', path: 'members', value: unknownIds(401) },
          ),
        )) as unknown as Res;
      expectScimError(split, 400, 'invalidValue');
      const post = (await h.http.post('/scim/v2/Groups').send({
        schemas: [GROUP_SCHEMA],
        displayName: 'too many members',
        members: unknownIds(1001),
      })) as unknown as Res;
      expectScimError(post, 400, 'invalidValue');
      const put = (await h.http.put(`/scim/v2/Groups/${groupId}`).send({
        schemas: [GROUP_SCHEMA],
        displayName: 'bounded members',
        members: unknownIds(1001),
      })) as unknown as Res;
      expectScimError(put, 400, 'invalidValue');
      const after = await calls();
      for (const action of ['GetUser', 'AddUserToGroup', 'CreateGroup', 'UpdateGroup', 'ListGroups']) {
        expect(delta(before, after, action), action).toBe(0);
      }
    });

    it('exactly MAX_MEMBERS_PER_REQUEST members is accepted (then refused for the unknown ids)', async () => {
      const res = (await h.http
        .patch(`/scim/v2/Groups/${groupId}`)
        .send(patchBody({ op: 'add', path: 'members', value: unknownIds(1000) }))) as unknown as Res;
      expectScimError(res, 400, 'invalidValue');
      expect(res.body.detail).toMatch(/is not a User id|are not User ids/);
    });
  });

  describe('record size', () => {
    it('a user past 64 KiB is a 400 naming the limit, before any upstream call; so is a PATCH making one', async () => {
      const before = await calls();
      const big = 'x'.repeat(70 * 1024);
      const post = (await h.http
        .post('/scim/v2/Users')
        .send(userBody(uniqueName('bounded.big'), { title: big }))) as unknown as Res;
      expectScimError(post, 400, 'invalidValue');
      expect(post.body.detail).toMatch(/at most 65536 bytes \(64 KiB\) per user/);
      // Many small values add up too.
      const many = (await h.http.post('/scim/v2/Users').send(
        userBody(uniqueName('bounded.many'), {
          addresses: Array.from({ length: 400 }, (_, i) => ({
            type: 'other',
            formatted: `${'street '.repeat(25)}${i}`,
          })),
        }),
      )) as unknown as Res;
      expectScimError(many, 400, 'invalidValue');
      const after = await calls();
      expect(delta(before, after, 'CreateUser')).toBe(0);

      const name = uniqueName('bounded.patch');
      const created = await h.http.post('/scim/v2/Users').send(userBody(name, { title: 'small' }));
      expect(created.status).toBe(201);
      const beforePatch = await calls();
      const patch = (await h.http
        .patch(`/scim/v2/Users/${created.body.id}`)
        .send(patchBody({ op: 'replace', path: 'title', value: big }))) as unknown as Res;
      expectScimError(patch, 400, 'invalidValue');
      expect(delta(beforePatch, await calls(), 'UpdateUser')).toBe(0);
      const read = await h.http.get(`/scim/v2/Users/${created.body.id}`);
      expect(read.body.title).toBe('small');
      // Just under the limit is fine.
      const fits = await h.http
        .patch(`/scim/v2/Users/${created.body.id}`)
        .send(patchBody({ op: 'replace', path: 'title', value: 'y'.repeat(60 * 1024) }));
      expect(fits.status, fits.text).toBe(200);
    });

    it('a group past 64 KiB (its externalId) is a 400 before any upstream call', async () => {
      const before = await calls();
      const post = (await h.http.post('/scim/v2/Groups').send({
        schemas: [GROUP_SCHEMA],
        displayName: 'big group',
        externalId: 'e'.repeat(70 * 1024),
      })) as unknown as Res;
      expectScimError(post, 400, 'invalidValue');
      expect(post.body.detail).toMatch(/per group/);
      expect(delta(before, await calls(), 'CreateGroup')).toBe(0);
    });
  });
});

describe('member ids are resolved a batch at a time, stopping at the first unknown', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: { MAX_MEMBERS_PER_REQUEST: '30000', MAX_BODY_BYTES: String(4 * 1048576) },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('30,000 unknown ids: 400 naming one, after at most one batch of GetUser calls', async () => {
    const group = await h.http
      .post('/scim/v2/Groups')
      .send({ schemas: [GROUP_SCHEMA], displayName: 'thirty thousand' });
    expect(group.status).toBe(201);
    const before = (await h.upstream()).calls;
    const res = (await h.http
      .patch(`/scim/v2/Groups/${group.body.id}`)
      .send(patchBody({ op: 'add', path: 'members', value: unknownIds(30_000) }))) as unknown as Res;
    expectScimError(res, 400, 'invalidValue');
    expect(res.body.detail).toMatch(/'no-such-user-0000\d\d'/);
    const after = (await h.upstream()).calls;
    const getUsers = (after.GetUser ?? 0) - (before.GetUser ?? 0);
    expect(getUsers).toBeGreaterThan(0);
    expect(getUsers).toBeLessThanOrEqual(16); // one batch: parallelism 8 × 2
    expect((after.AddUserToGroup ?? 0) - (before.AddUserToGroup ?? 0)).toBe(0);
  });

  it('known users before an unknown one: 400, and nobody is added', async () => {
    const group = await h.http
      .post('/scim/v2/Groups')
      .send({ schemas: [GROUP_SCHEMA], displayName: 'mixed members' });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const u = await h.http.post('/scim/v2/Users').send(userBody(uniqueName('bounded.member')));
      ids.push(u.body.id);
    }
    const res = (await h.http.patch(`/scim/v2/Groups/${group.body.id}`).send(
      patchBody({
        op: 'add',
        path: 'members',
        value: [...ids.map((value) => ({ value })), { value: 'not-a-user-at-all' }],
      }),
    )) as unknown as Res;
    expectScimError(res, 400, 'invalidValue');
    expect(res.body.detail).toContain("'not-a-user-at-all'");
    const read = await h.http.get(`/scim/v2/Groups/${group.body.id}`);
    expect(read.body.members ?? []).toEqual([]);
  });
});
