// Bad input through HTTP: every answer a SCIM 4xx error body (application/scim+json) with a
// useful detail, never HTML, a stack trace or a 500, and limits checked before any upstream call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';
import {
  callDelta,
  ENTERPRISE,
  expectScimError,
  PATCH_OP,
  patchBody,
  type Res,
  USER_SCHEMA,
  uniqueName,
  userBody,
  type Variant,
  variantApp,
} from './users-support.js';

describe('bad input', () => {
  let h: Harness;
  let small: Variant;
  let existing: { id: string; userName: string };
  beforeAll(async () => {
    h = await startHarness();
    small = variantApp(h, { env: { MAX_BODY_BYTES: '2048' } });
    const res = await h.http.post('/scim/v2/Users').send(userBody(uniqueName('bad.existing')));
    expect(res.status).toBe(201);
    existing = res.body;
  });
  afterAll(async () => {
    await small?.close();
    await h?.close();
  });

  const post = (body: unknown, contentType = 'application/scim+json') =>
    h.http
      .post('/scim/v2/Users')
      .set('Content-Type', contentType)
      .send(typeof body === 'string' ? body : JSON.stringify(body)) as unknown as Promise<Res>;

  it('a write with a malformed query parameter is refused before it changes anything', async () => {
    const userName = uniqueName('bad.query');
    const before = { ...h.emulator.calls() };
    const create = (await h.http
      .post('/scim/v2/Users?count=many')
      .send(userBody(userName))) as unknown as Res;
    expectScimError(create, 400, 'invalidValue');
    const patch = (await h.http
      .patch(`/scim/v2/Users/${existing.id}?startIndex=first`)
      .send(patchBody({ op: 'replace', path: 'displayName', value: 'Changed' }))) as unknown as Res;
    expectScimError(patch, 400, 'invalidValue');
    const group = (await h.http.post('/scim/v2/Groups?count=many').send({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      displayName: uniqueName('bad.query.group', 'g'),
    })) as unknown as Res;
    expectScimError(group, 400, 'invalidValue');
    // Nothing reached CloudIdentity: no user, no group, no change.
    expect(callDelta(before, h.emulator.calls())).toEqual({});
    expect(await h.store.findUserByUserName(userName)).toBeNull();
  });

  it('malformed JSON is 400 invalidSyntax', async () => {
    for (const text of ['{"userName":', '{userName: "x"}', '[1,2', 'not json at all']) {
      const res = await post(text);
      expectScimError(res, 400, 'invalidSyntax');
    }
    const patch = (await h.http
      .patch(`/scim/v2/Users/${existing.id}`)
      .set('Content-Type', 'application/scim+json')
      .send('{"schemas": [')) as unknown as Res;
    expectScimError(patch, 400, 'invalidSyntax');
  });

  it('unreadable bodies: broken gzip is 400, an unknown charset or encoding 415', async () => {
    const gzip = (await h.http
      .post('/scim/v2/Users')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .send('definitely not gzip')) as unknown as Res;
    expectScimError(gzip, 400, 'invalidSyntax');
    const charset = (await h.http
      .post('/scim/v2/Users')
      .set('Content-Type', 'application/scim+json; charset=latin1')
      .send(JSON.stringify(userBody(uniqueName('bad.charset'))))) as unknown as Res;
    expectScimError(charset, 415);
    const encoding = (await h.http
      .post('/scim/v2/Users')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'x-unknown')
      .send('{}')) as unknown as Res;
    expectScimError(encoding, 415);
  });

  it('a body that is not an object, or has the wrong schemas, is 400 invalidSyntax', async () => {
    for (const body of ['"a string"', '42', '[]', 'null'])
      expectScimError(await post(body), 400, 'invalidSyntax');
    expectScimError(
      await post({
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
        userName: uniqueName('bad.schemas'),
      }),
      400,
      'invalidSyntax',
    );
    expectScimError(
      await post({ schemas: USER_SCHEMA, userName: uniqueName('bad.schemas') }),
      400,
      'invalidSyntax',
    );
    const patchSchemas = (await h.http.patch(`/scim/v2/Users/${existing.id}`).send({
      schemas: [USER_SCHEMA],
      Operations: [{ op: 'replace', path: 'title', value: 'x' }],
    })) as unknown as Res;
    expectScimError(patchSchemas, 400, 'invalidSyntax');
  });

  it('a missing or empty userName is 400 invalidValue', async () => {
    for (const userName of [undefined, '', null]) {
      const res = await post({ schemas: [USER_SCHEMA], ...(userName !== undefined ? { userName } : {}) });
      expectScimError(res, 400, 'invalidValue');
      expect(res.body.detail).toMatch(/userName/);
    }
    const removed = (await h.http
      .patch(`/scim/v2/Users/${existing.id}`)
      .send(patchBody({ op: 'remove', path: 'userName' }))) as unknown as Res;
    expect(removed.status).toBe(400);
    expectScimError(removed, 400, removed.body.scimType as string);
  });

  it('over-long values are 400 invalidValue naming the attribute, before any upstream call', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['userName', { userName: `${'u'.repeat(44)}@exampl.com` }], // 55
      ['displayName', { displayName: 'd'.repeat(65) }],
      ['emails', { emails: [{ value: `${'e'.repeat(117)}@example.com`, type: 'work', primary: true }] }], // 129
      ['phoneNumbers', { phoneNumbers: [{ value: '1'.repeat(21), type: 'work' }] }],
      [
        'description',
        {
          'urn:volcengine:params:scim:schemas:extension:cloudidentity:2.0:User': {
            description: 'x'.repeat(256),
          },
        },
      ],
    ];
    for (const [attribute, extra] of cases) {
      const before = h.emulator.calls();
      const res = await post({ ...userBody(uniqueName('bad.long')), ...extra });
      expectScimError(res, 400, 'invalidValue');
      expect(res.body.detail, attribute).toContain(attribute);
      expect(callDelta(before, h.emulator.calls()), attribute).toEqual({});
    }

    // and through PATCH: no write reaches CloudIdentity
    const before = h.emulator.calls();
    const res = (await h.http
      .patch(`/scim/v2/Users/${existing.id}`)
      .send(patchBody({ op: 'replace', path: 'displayName', value: 'd'.repeat(65) }))) as unknown as Res;
    expectScimError(res, 400, 'invalidValue');
    expect(res.body.detail).toContain('displayName');
    const delta = callDelta(before, h.emulator.calls());
    expect(delta.UpdateUser ?? 0).toBe(0);
    expect(delta.CreateUser ?? 0).toBe(0);
  });

  it('values at the limits are accepted', async () => {
    const userName = `${uniqueName('lim').slice(0, 20)}${'u'.repeat(34)}`; // 54
    expect(userName).toHaveLength(54);
    const res = await post({
      ...userBody(userName),
      displayName: 'd'.repeat(64),
      emails: [{ value: `${'e'.repeat(116)}@example.com`, type: 'work', primary: true }],
      phoneNumbers: [{ value: '1'.repeat(20), type: 'work' }],
    });
    expect(res.status, res.text).toBe(201);
  });

  it('wrong types are 400 invalidValue', async () => {
    const cases: Record<string, unknown>[] = [
      { active: 'maybe' },
      { active: 1 },
      { emails: { value: 'a@example.com' } },
      { emails: 'a@example.com' },
      { name: 'Just A String' },
      { userName: 42 },
      { userName: ['a', 'b'] },
      { externalId: { x: 1 } },
      { [ENTERPRISE]: 'not an object' },
      { 'urn:volcengine:params:scim:schemas:extension:cloudidentity:2.0:User': { description: 7 } },
    ];
    for (const extra of cases) {
      const res = await post({ ...userBody(uniqueName('bad.type')), ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expectScimError(res, 400, 'invalidValue');
    }
    const patch = (await h.http
      .patch(`/scim/v2/Users/${existing.id}`)
      .send(patchBody({ op: 'replace', path: 'active', value: 'perhaps' }))) as unknown as Res;
    expectScimError(patch, 400, 'invalidValue');
  });

  it('unknown attributes are ignored', async () => {
    const userName = uniqueName('bad.unknown');
    const res = await post({
      ...userBody(userName),
      favouriteColour: 'blue',
      'urn:example:ext:1.0': { a: 1 },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.favouriteColour).toBeUndefined();
    expect(res.text).not.toContain('urn:example:ext');
  });

  it('bad PATCH operations are 400 with the matching scimType', async () => {
    const cases: Array<[unknown, string]> = [
      [{ schemas: [PATCH_OP] }, 'invalidValue'],
      [{ schemas: [PATCH_OP], Operations: [] }, 'invalidValue'],
      [{ schemas: [PATCH_OP], Operations: 'replace' }, 'invalidValue'],
      [patchBody({ op: 'frobnicate', path: 'title', value: 'x' }), 'invalidSyntax'],
      [patchBody({ op: 'remove' }), 'noTarget'],
      [patchBody({ op: 'add', path: 'title' }), 'invalidValue'],
      [patchBody({ op: 'replace', path: 'emails[type eq "work"', value: 'x' }), 'invalidPath'],
      [
        patchBody({
          op: 'replace',
          path: 'urn:volcengine:params:scim:schemas:extension:cloudidentity:2.0:User:source',
          value: 'x',
        }),
        'mutability',
      ],
    ];
    for (const [body, scimType] of cases) {
      const res = (await h.http
        .patch(`/scim/v2/Users/${existing.id}`)
        .send(body as object)) as unknown as Res;
      expect(res.status, JSON.stringify(body) + res.text).toBe(400);
      expectScimError(res, 400, scimType);
    }
  });

  it('an oversized body is 413', async () => {
    const res = (await small.http
      .post('/scim/v2/Users')
      .set('Content-Type', 'application/scim+json')
      .send(
        JSON.stringify({ ...userBody(uniqueName('bad.big')), title: 'x'.repeat(4096) }),
      )) as unknown as Res;
    expectScimError(res, 413);
    const patch = (await small.http
      .patch(`/scim/v2/Users/${existing.id}`)
      .send(patchBody({ op: 'replace', path: 'title', value: 'y'.repeat(4096) }))) as unknown as Res;
    expectScimError(patch, 413);
  });

  it('ids with quotes, slashes or other odd characters are 404 SCIM errors', async () => {
    const ids = [
      'a"b',
      'a%2Fb',
      '%22%29%20or%20%28id%20eq%20%22',
      'x%00y',
      '..%2F..%2Fetc',
      `${'z'.repeat(300)}`,
      '%E2%98%83',
    ];
    for (const id of ids) {
      for (const method of ['get', 'delete'] as const) {
        const res = (await h.http[method](`/scim/v2/Users/${id}`)) as unknown as Res;
        expectScimError(res, 404);
      }
      const put = (await h.http
        .put(`/scim/v2/Users/${id}`)
        .send(userBody(uniqueName('odd')))) as unknown as Res;
      expectScimError(put, 404);
      const patch = (await h.http
        .patch(`/scim/v2/Users/${id}`)
        .send(patchBody({ op: 'replace', path: 'title', value: 'x' }))) as unknown as Res;
      expectScimError(patch, 404);
    }
    const filter = (await h.http.get(
      `/scim/v2/Users?filter=${encodeURIComponent('id eq "a\\"b"')}`,
    )) as unknown as Res;
    expect([200, 400]).toContain(filter.status);
  });

  it('unknown routes and methods are 404 SCIM errors', async () => {
    for (const [method, url] of [
      ['get', '/scim/v2/Nope'],
      ['get', '/scim/v2/Users/a/b'],
      ['post', '/scim/v2/Users/some-id'],
      ['get', '/nothing-here'],
      ['delete', '/scim/v2/Users'],
    ] as const) {
      const res = (await h.http[method](url)) as unknown as Res;
      expectScimError(res, 404);
    }
  });

  it('no body on POST and PUT is 400, not 500', async () => {
    const res = (await h.http.post('/scim/v2/Users')) as unknown as Res;
    expect(res.status).toBe(400);
    expectScimError(res, 400, res.body.scimType as string);
    const put = (await h.http.put(`/scim/v2/Users/${existing.id}`)) as unknown as Res;
    expect(put.status).toBe(400);
    expectScimError(put, 400, put.body.scimType as string);
  });
});
