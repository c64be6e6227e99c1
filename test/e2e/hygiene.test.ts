// Issue 11, finding 9: userName (and a group's displayName) in Unicode NFC, and X-Forwarded-*
// trusted only with TRUST_PROXY.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness, storeKinds } from '../helpers/harness.js';
import { expectScimError, filterUrl, patchBody, type Res, userBody } from './users-support.js';

const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const kinds = await storeKinds();

/** `base` + `é` precomposed (NFC) and decomposed (NFD: e + U+0301). */
const nfc = (base: string) => `${base}\u00e9`;
const nfd = (base: string) => `${base}e\u0301`;

describe.each(kinds)('userName and group displayName in NFC (%s store)', (store) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ store });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('josé in NFC then in NFD: 201, then 409 uniqueness; one upstream account, in NFC', async () => {
    const base = `jos-${store}-${Date.now()}`;
    expect(nfc(base)).not.toBe(nfd(base));
    const first = await h.http.post('/scim/v2/Users').send(userBody(nfc(base)));
    expect(first.status, first.text).toBe(201);
    expect(first.body.userName).toBe(nfc(base));
    const second = (await h.http.post('/scim/v2/Users').send(userBody(nfd(base)))) as unknown as Res;
    expectScimError(second, 409, 'uniqueness');
    const upstream = (await h.upstream()).users.filter((u) => u.UserName.normalize('NFC') === nfc(base));
    expect(upstream).toHaveLength(1);
    expect(upstream[0].UserName).toBe(nfc(base));
  });

  it('a user created in NFD is stored and sent upstream in NFC; NFD and NFC filters both find it', async () => {
    const base = `rene-${store}-${Date.now()}`;
    const created = await h.http.post('/scim/v2/Users').send(userBody(nfd(base)));
    expect(created.status, created.text).toBe(201);
    expect(created.body.userName).toBe(nfc(base));
    const upstream = (await h.upstream()).users.filter((u) => u.UserName.normalize('NFC') === nfc(base));
    expect(upstream.map((u) => u.UserName)).toEqual([nfc(base)]);
    for (const form of [nfc(base), nfd(base)]) {
      const found = await h.http.get(filterUrl(`userName eq "${form}"`));
      expect(found.body.totalResults, form).toBe(1);
      expect(found.body.Resources[0].id).toBe(created.body.id);
    }
    const again = (await h.http.post('/scim/v2/Users').send(userBody(nfc(base)))) as unknown as Res;
    expectScimError(again, 409, 'uniqueness');
  });

  it('PUT and PATCH normalise too: renaming to the NFD form of a taken name is 409', async () => {
    const taken = `zoe-${store}-${Date.now()}`;
    expect((await h.http.post('/scim/v2/Users').send(userBody(nfc(taken)))).status).toBe(201);
    const other = await h.http.post('/scim/v2/Users').send(userBody(`other-${taken}`));
    expect(other.status).toBe(201);
    const patch = (await h.http
      .patch(`/scim/v2/Users/${other.body.id}`)
      .send(patchBody({ op: 'replace', path: 'userName', value: nfd(taken) }))) as unknown as Res;
    expectScimError(patch, 409, 'uniqueness');
    const put = (await h.http
      .put(`/scim/v2/Users/${other.body.id}`)
      .send(userBody(nfd(taken)))) as unknown as Res;
    expectScimError(put, 409, 'uniqueness');
    // A rename to a free NFD name lands in NFC.
    const renamed = await h.http
      .patch(`/scim/v2/Users/${other.body.id}`)
      .send(patchBody({ op: 'replace', path: 'userName', value: nfd(`free-${taken}`) }));
    expect(renamed.status, renamed.text).toBe(200);
    expect(renamed.body.userName).toBe(nfc(`free-${taken}`));
  });

  it('group displayName (a uniqueness key) is NFC too: NFC then NFD is 409', async () => {
    const base = `caf-${store}-${Date.now()}`;
    const first = await h.http
      .post('/scim/v2/Groups')
      .send({ schemas: [GROUP_SCHEMA], displayName: nfd(base) });
    expect(first.status, first.text).toBe(201);
    expect(first.body.displayName).toBe(nfc(base));
    const second = (await h.http
      .post('/scim/v2/Groups')
      .send({ schemas: [GROUP_SCHEMA], displayName: nfc(base) })) as unknown as Res;
    expectScimError(second, 409, 'uniqueness');
    const found = await h.http.get(
      `/scim/v2/Groups?filter=${encodeURIComponent(`displayName eq "${nfd(base)}"`)}`,
    );
    expect(found.body.totalResults).toBe(1);
    expect(found.body.Resources[0].id).toBe(first.body.id);
  });
});

describe('TRUST_PROXY decides whether X-Forwarded-Host/-Proto shape meta.location', () => {
  const forwarded = { 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'https' };

  async function locationWith(env: Record<string, string>): Promise<{ location: string; header: string }> {
    const h = await startHarness({ env });
    try {
      const created = await h.http
        .post('/scim/v2/Users')
        .set(forwarded)
        .send(userBody(`proxy-${Date.now()}`));
      expect(created.status, created.text).toBe(201);
      const read = await h.http.get(`/scim/v2/Users/${created.body.id}`).set(forwarded);
      return { location: read.body.meta.location, header: created.headers.location };
    } finally {
      await h.close();
    }
  }

  it('unset (default): forwarded headers from any client are ignored', async () => {
    const { location, header } = await locationWith({});
    expect(location).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/scim\/v2\/Users\//);
    expect(header).not.toContain('evil.example');
  });

  it('a proxy list that does not include the peer: still ignored', async () => {
    const { location } = await locationWith({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.1' });
    expect(location).not.toContain('evil.example');
    expect(location).toMatch(/^http:\/\//);
  });

  it('trusted (true, or the peer in the list): the proxy\u2019s host and protocol are used', async () => {
    for (const value of ['true', 'loopback', '127.0.0.1/8,::1', '1']) {
      const { location, header } = await locationWith({ TRUST_PROXY: value });
      expect(location, value).toMatch(/^https:\/\/evil\.example\/scim\/v2\/Users\//);
      expect(header, value).toMatch(/^https:\/\/evil\.example\//);
    }
  });

  it('PUBLIC_BASE_URL wins over everything', async () => {
    const { location } = await locationWith({
      TRUST_PROXY: 'true',
      PUBLIC_BASE_URL: 'https://scim.example.org',
    });
    expect(location).toMatch(/^https:\/\/scim\.example\.org\/scim\/v2\/Users\//);
  });
});
