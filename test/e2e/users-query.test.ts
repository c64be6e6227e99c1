// GET /Users and POST /Users/.search: filters (and what they cost upstream), paging edges,
// attributes/excludedAttributes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  CallOptions,
  CloudIdentityApi,
  CloudIdentityUser,
  ListUsersInput,
} from '../../src/volcengine/types.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import {
  callDelta,
  ENTERPRISE,
  expectListResponse,
  expectScimError,
  filterUrl,
  type Res,
  SEARCH_SCHEMA,
  uniqueName,
  userBody,
  variantApp,
} from './users-support.js';

type User = Record<string, unknown> & { id: string; userName: string };

describe('/Users queries', () => {
  let h: Harness;
  const users: User[] = [];
  const tag = uniqueName('q').split('@')[0].replace(/\./g, '');
  beforeAll(async () => {
    h = await startHarness();
    // Enough foreign users that a scan would cost several ListUsers pages.
    h.emulator.seedUsers(250, `${tag}-seed-`);
    for (let i = 0; i < 4; i++) {
      const userName = uniqueName(`query${i}`);
      const res = await h.http.post('/scim/v2/Users').send(
        userBody(userName, {
          externalId: `${tag}-ext-${i}`,
          title: i % 2 === 0 ? 'even' : 'odd',
          emails: [
            { value: `work${i}-${tag}@example.com`, type: 'work', primary: true },
            { value: `home${i}-${tag}@example.org`, type: 'home' },
          ],
          [ENTERPRISE]: { department: `dept-${i}` },
        }),
      );
      expect(res.status, res.text).toBe(201);
      users.push(res.body as User);
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  const ids = (res: Res) => ((res.body.Resources ?? []) as Array<{ id: string }>).map((r) => r.id);
  const get = async (url: string) => (await h.http.get(url)) as unknown as Res;

  describe('filters', () => {
    it('userName eq, in any case, costs at most one ListUsers call and no scan', async () => {
      for (const variant of [users[0].userName, users[0].userName.toUpperCase()]) {
        const before = h.emulator.calls();
        const res = await get(filterUrl(`userName eq "${variant}"`));
        const delta = callDelta(before, h.emulator.calls());
        expectListResponse(res);
        expect(res.body.totalResults).toBe(1);
        expect(ids(res)).toEqual([users[0].id]);
        expect(delta.ListUsers ?? 0).toBeLessThanOrEqual(1);
        expect(delta.GetUser ?? 0).toBe(0);
      }
      // Attribute names and operators are case-insensitive too; the full URN path works.
      const odd = await get(filterUrl(`USERNAME EQ "${users[1].userName}"`));
      expect(ids(odd)).toEqual([users[1].id]);
      const urn = await get(
        filterUrl(`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "${users[1].userName}"`),
      );
      expect(ids(urn)).toEqual([users[1].id]);
    });

    it('a seeded foreign user is found by userName eq with one call', async () => {
      const before = h.emulator.calls();
      const res = await get(filterUrl(`userName eq "${tag}-SEED-17"`));
      expect(res.body.totalResults).toBe(1);
      expect((res.body.Resources as User[])[0].userName).toBe(`${tag}-seed-17`);
      expect(callDelta(before, h.emulator.calls())).toEqual({ ListUsers: 1 });
    });

    it('externalId eq (caseExact) and id eq use no scan', async () => {
      const before = h.emulator.calls();
      const res = await get(filterUrl(`externalId eq "${tag}-ext-2"`));
      expect(ids(res)).toEqual([users[2].id]);
      expect(callDelta(before, h.emulator.calls()).ListUsers ?? 0).toBe(0);
      expect((await get(filterUrl(`externalId eq "${tag}-EXT-2"`))).body.totalResults).toBe(0);
      // Microsoft's own examples leave the value unquoted.
      expect(ids(await get(filterUrl(`externalId eq ${tag}-ext-3`)))).toEqual([users[3].id]);
      expect(ids(await get(filterUrl(`id eq "${users[1].id}"`)))).toEqual([users[1].id]);
      expect((await get(filterUrl('id eq "no-such-id"'))).body.totalResults).toBe(0);
    });

    it('and / or', async () => {
      const and = await get(filterUrl(`userName eq "${users[0].userName}" and title eq "even"`));
      expect(ids(and)).toEqual([users[0].id]);
      const andMiss = await get(filterUrl(`userName eq "${users[0].userName}" and title eq "odd"`));
      expect(andMiss.body.totalResults).toBe(0);
      const or = await get(filterUrl(`userName eq "${users[0].userName}" or externalId eq "${tag}-ext-3"`));
      expect(new Set(ids(or))).toEqual(new Set([users[0].id, users[3].id]));
      expect(or.body.totalResults).toBe(2);
    });

    it('emails[type eq "work"].value eq (Entra matching attribute)', async () => {
      const res = await get(filterUrl(`emails[type eq "work"].value eq "WORK1-${tag}@example.com"`));
      expect(ids(res)).toEqual([users[1].id]);
      const home = await get(filterUrl(`emails[type eq "work"].value eq "home1-${tag}@example.org"`));
      expect(home.body.totalResults).toBe(0);
      const any = await get(filterUrl(`emails.value eq "home2-${tag}@example.org"`));
      expect(ids(any)).toEqual([users[2].id]);
      const ext = await get(filterUrl(`${ENTERPRISE}:department eq "dept-3"`));
      expect(ids(ext)).toEqual([users[3].id]);
      const co = await get(filterUrl(`userName co "${tag}-seed-24" and userName sw "${tag}"`));
      expect(co.body.totalResults).toBe(11); // seed-24, seed-240 … seed-249
    });

    it('a filter that would scan more than FILTER_SCAN_LIMIT users is 400 tooMany', async () => {
      const small = variantApp(h, { env: { FILTER_SCAN_LIMIT: '100' } });
      try {
        const res = (await small.http.get(filterUrl('title eq "even"'))) as unknown as Res;
        expectScimError(res, 400, 'tooMany');
        expect(res.body.detail).toMatch(/userName eq/);
        // indexed lookups are not limited
        const ok = (await small.http.get(filterUrl(`userName eq "${users[0].userName}"`))) as unknown as Res;
        expect(ok.body.totalResults).toBe(1);
      } finally {
        await small.close();
      }
    });

    it('Okta-style filter with startIndex and count', async () => {
      const res = await get(filterUrl(`userName eq "${users[2].userName}"`, '&startIndex=1&count=100'));
      expectListResponse(res);
      expect(res.body).toMatchObject({ totalResults: 1, startIndex: 1, itemsPerPage: 1 });
    });

    it('copes with an upstream UserName match that is case-sensitive and fuzzy (unverified upstream behaviour)', async () => {
      const fuzzyPrefix = `fz${tag}-`;
      h.emulator.seedUsers(250, fuzzyPrefix);
      // ListUsers(UserName) as a case-sensitive substring match, shortest names last.
      const fuzzy = variantApp(h, {
        wrapApi: (client) =>
          new Proxy(client, {
            get(target, key, receiver) {
              if (key !== 'listUsers') return Reflect.get(target, key, receiver);
              return async (input: ListUsersInput, opts?: CallOptions) => {
                if (!input.UserName) return target.listUsers(input, opts);
                const all: CloudIdentityUser[] = [];
                for (let page = 1; ; page++) {
                  const r = await target.listUsers({ PageNumber: page, PageSize: 100 }, opts);
                  all.push(...r.Users);
                  if (page * 100 >= r.Total) break;
                }
                const matches = all
                  .filter((u) => u.UserName.includes(input.UserName as string))
                  .sort(
                    (a, b) => b.UserName.length - a.UserName.length || a.UserName.localeCompare(b.UserName),
                  );
                const size = input.PageSize ?? 10;
                const offset = ((input.PageNumber ?? 1) - 1) * size;
                return {
                  PageNumber: input.PageNumber ?? 1,
                  PageSize: size,
                  Total: matches.length,
                  Users: matches.slice(offset, offset + size),
                };
              };
            },
          }) as unknown as CloudIdentityApi,
      });
      try {
        // fz…-1 is a substring of 111 names (1, 10-19, 100-199); the exact one sorts last, on page 2
        const exact = (await fuzzy.http.get(filterUrl(`userName eq "${fuzzyPrefix}1"`))) as unknown as Res;
        expect(exact.body.totalResults).toBe(1);
        expect(exact.body.Resources[0].userName).toBe(`${fuzzyPrefix}1`);
        // a bridge user looked up in another case than upstream holds
        const upper = (await fuzzy.http.get(
          filterUrl(`userName eq "${users[3].userName.toUpperCase()}"`),
        )) as unknown as Res;
        expect(upper.body.totalResults).toBe(1);
        expect(upper.body.Resources[0].id).toBe(users[3].id);
      } finally {
        await fuzzy.close();
      }
    });

    it('a filter that matches nothing is 200 with totalResults 0', async () => {
      const res = await get(filterUrl('userName eq "3f1c1d2e-0000-4000-8000-000000000000"'));
      expectListResponse(res);
      expect(res.body.totalResults).toBe(0);
      expect(res.body.itemsPerPage).toBe(0);
    });

    it('an unknown attribute is 400 invalidFilter naming it', async () => {
      const res = await get(filterUrl('favouriteColour eq "blue"'));
      expectScimError(res, 400, 'invalidFilter');
      expect(res.body.detail).toContain('favouriteColour');
    });

    it('an unsupported operator or a malformed filter is 400 invalidFilter', async () => {
      for (const filter of [
        'userName xx "a"',
        'userName eq "a" and',
        'userName eq "a" or (',
        'active gt true',
        '((userName eq "a")',
        '"just a string"',
      ]) {
        const res = await get(filterUrl(filter));
        expectScimError(res, 400, 'invalidFilter');
      }
    });
  });

  describe('paging', () => {
    it('startIndex 0 or negative means 1', async () => {
      const first = await get('/scim/v2/Users?startIndex=1&count=3');
      for (const startIndex of [0, -5]) {
        const res = await get(`/scim/v2/Users?startIndex=${startIndex}&count=3`);
        expectListResponse(res);
        expect(res.body.startIndex).toBe(1);
        expect(ids(res)).toEqual(ids(first));
      }
    });

    it('count=0 answers only totalResults; negative count means 0', async () => {
      const all = await get('/scim/v2/Users?count=1');
      for (const count of [0, -1]) {
        const res = await get(`/scim/v2/Users?count=${count}`);
        expectListResponse(res);
        expect(res.body.totalResults).toBe(all.body.totalResults);
        expect(res.body.itemsPerPage).toBe(0);
        expect(ids(res)).toEqual([]);
      }
    });

    it('count over the maximum is capped (SCIM_MAX_PAGE_SIZE)', async () => {
      const res = await get('/scim/v2/Users?count=100000');
      expectListResponse(res);
      expect(res.body.itemsPerPage).toBe(h.config.maxPageSize);
      expect(res.body.totalResults as number).toBeGreaterThan(h.config.maxPageSize);
    });

    it('a startIndex past the end gives an empty page with the true total', async () => {
      const res = await get('/scim/v2/Users?startIndex=100000&count=10');
      expectListResponse(res);
      expect(res.body.totalResults as number).toBeGreaterThan(250);
      expect(ids(res)).toEqual([]);
    });

    it('non-integer startIndex or count is 400', async () => {
      for (const q of ['count=abc', 'count=1.5', 'startIndex=x', 'startIndex=2e']) {
        const res = await get(`/scim/v2/Users?${q}`);
        expectScimError(res, 400, 'invalidValue');
      }
    });

    it('pages of a filtered result are slices of it', async () => {
      const filter = `userName sw "${tag}-seed-1"`; // seed-1, 10-19, 100-199: 111 users
      const all = await get(filterUrl(filter, '&count=200'));
      expect(all.body.totalResults).toBe(111);
      const p2 = await get(filterUrl(filter, '&startIndex=11&count=10'));
      expect(p2.body.totalResults).toBe(111);
      expect(p2.body.startIndex).toBe(11);
      expect(ids(p2)).toEqual(ids(all).slice(10, 20));
    });
  });

  describe('attributes and excludedAttributes', () => {
    it('attributes keeps only the named ones (plus id and schemas)', async () => {
      const res = await get(
        filterUrl(`userName eq "${users[0].userName}"`, '&attributes=userName,name.familyName'),
      );
      const r = (res.body.Resources as User[])[0];
      expect(Object.keys(r).sort()).toEqual(['id', 'name', 'schemas', 'userName']);
      expect(r.name).toEqual({ familyName: 'Family' });
      const one = (await get(`/scim/v2/Users/${users[0].id}?attributes=emails.value`)) as Res;
      expect(one.status).toBe(200);
      expect(one.body.emails).toEqual([
        { value: `work0-${tag}@example.com` },
        { value: `home0-${tag}@example.org` },
      ]);
      expect(one.body.userName).toBeUndefined();
      const ext = await get(`/scim/v2/Users/${users[0].id}?attributes=${ENTERPRISE}:department`);
      expect(ext.body[ENTERPRISE]).toEqual({ department: 'dept-0' });
    });

    it('excludedAttributes drops the named ones but never id', async () => {
      const res = await get(`/scim/v2/Users/${users[1].id}?excludedAttributes=emails,name.givenName,id,meta`);
      expect(res.status).toBe(200);
      expect(res.body.emails).toBeUndefined();
      expect(res.body.meta).toBeUndefined();
      expect(res.body.id).toBe(users[1].id);
      expect(res.body.name).toEqual({ familyName: 'Family' });
      expect(res.body.userName).toBe(users[1].userName);
    });

    it('applies to POST and PATCH responses too', async () => {
      const res = await h.http
        .post('/scim/v2/Users?attributes=userName')
        .send(userBody(uniqueName('query.projection')));
      expect(res.status).toBe(201);
      expect(Object.keys(res.body).sort()).toEqual(['id', 'schemas', 'userName']);
    });
  });

  describe('POST /Users/.search', () => {
    it('takes the query parameters from a SearchRequest body', async () => {
      const res = (await h.http.post('/scim/v2/Users/.search').send({
        schemas: [SEARCH_SCHEMA],
        filter: `userName eq "${users[2].userName.toUpperCase()}" or userName eq "${users[3].userName}"`,
        attributes: ['userName'],
        startIndex: 1,
        count: 1,
      })) as unknown as Res;
      expectListResponse(res);
      expect(res.body.totalResults).toBe(2);
      expect(res.body.itemsPerPage).toBe(1);
      expect(Object.keys((res.body.Resources as User[])[0]).sort()).toEqual(['id', 'schemas', 'userName']);
    });

    it('rejects a bad filter in the body like the query string', async () => {
      const res = (await h.http
        .post('/scim/v2/Users/.search')
        .send({ schemas: [SEARCH_SCHEMA], filter: 'nope eq 1' })) as unknown as Res;
      expectScimError(res, 400, 'invalidFilter');
      const wrongType = (await h.http
        .post('/scim/v2/Users/.search')
        .send({ schemas: [SEARCH_SCHEMA], filter: 42 })) as unknown as Res;
      expectScimError(wrongType, 400, 'invalidFilter');
    });
  });
});
