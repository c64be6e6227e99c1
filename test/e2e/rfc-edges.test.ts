// RFC edges of PATCH and projection over HTTP (issue 12, part A): whole extension objects in
// add/replace/remove, what a read shows after `remove`, value filters where an attribute name
// belongs, POST's 201 against a later GET, and a corpus of odd-but-valid PATCH shapes whose
// answers must never carry a JavaScript runtime message.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';
import {
  ENTERPRISE,
  expectScimError,
  type LooseJson,
  patchBody,
  type Res,
  USER_SCHEMA,
  uniqueName,
  userBody,
  VOLC,
} from './users-support.js';

const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
/** What a runtime error looks like; none of it may appear in a SCIM error detail. */
const RUNTIME_TEXT =
  /Cannot |undefined|null to object|Maximum call stack|is not a function|of undefined|not extensible/;

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const create = async (extra: Record<string, unknown> = {}, name = uniqueName('edge')) => {
  const res = (await h.http.post('/scim/v2/Users').send(userBody(name, extra))) as unknown as Res;
  expect(res.status, res.text).toBe(201);
  return res.body as LooseJson & { id: string };
};
const patch = async (id: string, ...ops: Record<string, unknown>[]) =>
  (await h.http.patch(`/scim/v2/Users/${id}`).send(patchBody(...ops))) as unknown as Res;
const get = async (id: string, query = '') =>
  (await h.http.get(`/scim/v2/Users/${id}${query}`)) as unknown as Res;
const upstreamOf = async (userName: string) =>
  (await h.upstream()).users.find((u) => u.UserName === userName);

describe('PATCH of a whole extension object (RFC 7644 §3.5.2)', () => {
  it.each(['add', 'replace', 'Replace'])(
    "%s with a 'schemas' member inside the enterprise value: accepted, schemas ignored",
    async (op) => {
      const user = await create({ [ENTERPRISE]: { employeeNumber: '7' } });
      const res = await patch(user.id, {
        op,
        path: ENTERPRISE,
        value: { schemas: [ENTERPRISE], department: 'Eng' },
      });
      expect(res.status, res.text).toBe(200);
      const read = await get(user.id);
      // Sub-attributes not in the value are left as they were (RFC 7644 §3.5.2.3).
      expect(read.body[ENTERPRISE]).toEqual({ employeeNumber: '7', department: 'Eng' });
      expect(read.body[ENTERPRISE].schemas).toBeUndefined();
      expect(read.body.schemas).toContain(ENTERPRISE);
    },
  );

  it('add of the enterprise object to a user without one creates it', async () => {
    const user = await create();
    const res = await patch(user.id, {
      op: 'add',
      path: ENTERPRISE,
      value: { schemas: [ENTERPRISE], department: 'Ops', manager: { value: user.id } },
    });
    expect(res.status, res.text).toBe(200);
    expect((await get(user.id)).body[ENTERPRISE]).toMatchObject({
      department: 'Ops',
      manager: { value: user.id },
    });
  });

  it('remove of the enterprise object: gone afterwards when present, a no-op when absent', async () => {
    const user = await create({ [ENTERPRISE]: { department: 'Eng', employeeNumber: '9' } });
    const removed = await patch(user.id, { op: 'remove', path: ENTERPRISE });
    expect(removed.status, removed.text).toBe(200);
    const read = await get(user.id);
    expect(read.body[ENTERPRISE]).toBeUndefined();
    expect(read.body.schemas).not.toContain(ENTERPRISE);
    expect(read.body.displayName).toBeUndefined();
    const again = await patch(user.id, { op: 'remove', path: ENTERPRISE.toUpperCase() });
    expect(again.status, again.text).toBe(200);
    expect((await get(user.id)).body[ENTERPRISE]).toBeUndefined();
  });

  it('remove, then add of the enterprise object in one request, in order', async () => {
    const user = await create({ [ENTERPRISE]: { department: 'Old', costCenter: 'C1' } });
    const res = await patch(
      user.id,
      { op: 'replace', path: `${ENTERPRISE}:department`, value: 'Mid' },
      { op: 'remove', path: ENTERPRISE },
      { op: 'add', path: ENTERPRISE, value: { schemas: [ENTERPRISE], division: 'New' } },
    );
    expect(res.status, res.text).toBe(200);
    expect((await get(user.id)).body[ENTERPRISE]).toEqual({ division: 'New' });
  });

  it('the CloudIdentity extension: add with read-only members ignores them; remove clears description', async () => {
    const user = await create({ [VOLC]: { description: 'first' } });
    const before = await upstreamOf(user.userName);
    const added = await patch(user.id, {
      op: 'add',
      path: VOLC,
      value: { schemas: [VOLC], description: 'second', source: 'Sync', identityType: 'Forged' },
    });
    expect(added.status, added.text).toBe(200);
    let read = await get(user.id);
    expect(read.body[VOLC]).toMatchObject({ description: 'second', source: before?.Source });
    expect(read.body[VOLC].identityType).not.toBe('Forged');
    expect((await upstreamOf(user.userName))?.Description).toBe('second');

    const removed = await patch(user.id, { op: 'remove', path: VOLC });
    expect(removed.status, removed.text).toBe(200);
    read = await get(user.id);
    expect(read.body[VOLC]?.description).toBeUndefined();
    expect((await upstreamOf(user.userName))?.Description ?? '').toBe('');
    const again = await patch(user.id, { op: 'remove', path: VOLC });
    expect(again.status, again.text).toBe(200);
  });

  it('a path to a read-only member of the CloudIdentity extension is 400 mutability; an unknown one invalidPath', async () => {
    const user = await create();
    expectScimError(
      await patch(user.id, { op: 'replace', path: `${VOLC}:source`, value: 'Sync' }),
      400,
      'mutability',
    );
    expectScimError(
      await patch(user.id, { op: 'replace', path: `${VOLC}:colour`, value: 'red' }),
      400,
      'invalidPath',
    );
  });
});

describe('after remove, a read does not show the attribute (RFC 7644 §3.5.2.2)', () => {
  it('remove displayName: no displayName in SCIM, while CloudIdentity keeps its fallback', async () => {
    const user = await create({ displayName: 'Shown Name' });
    expect(user.displayName).toBe('Shown Name');
    const res = await patch(user.id, { op: 'remove', path: 'displayName' });
    expect(res.status, res.text).toBe(200);
    expect(res.body.displayName).toBeUndefined();
    expect((await get(user.id)).body.displayName).toBeUndefined();
    const listed = (await h.http.get(
      `/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${user.userName}"`)}`,
    )) as unknown as Res;
    expect(listed.body.Resources[0].displayName).toBeUndefined();
    // CloudIdentity needs a DisplayName: the bridge's fallback (givenName familyName) stays there.
    expect((await upstreamOf(user.userName))?.DisplayName).toBe('Given Family');
  });

  it('a user created without displayName shows none; a console edit of the DisplayName is shown', async () => {
    const user = await create();
    expect(user.displayName).toBeUndefined();
    expect((await get(user.id)).body.displayName).toBeUndefined();
    const upstream = await upstreamOf(user.userName);
    expect(upstream?.DisplayName).toBe('Given Family');
    await h.client.updateUser({ UserId: upstream!.UserId, DisplayName: 'Edited In Console' });
    expect((await get(user.id)).body.displayName).toBe('Edited In Console');
  });

  it('remove title, name.givenName and emails: gone from the next read', async () => {
    const user = await create({ title: 'Boss' });
    const res = await patch(
      user.id,
      { op: 'remove', path: 'title' },
      { op: 'remove', path: 'name.givenName' },
      { op: 'remove', path: 'emails' },
    );
    expect(res.status, res.text).toBe(200);
    const read = (await get(user.id)).body;
    expect(read.title).toBeUndefined();
    expect(read.name).toEqual({ familyName: 'Family' });
    expect(read.emails).toBeUndefined();
    expect((await upstreamOf(user.userName))?.Email ?? '').toBe('');
  });

  it('remove active is refused (400 invalidValue) and changes nothing, active or deactivated', async () => {
    const user = await create();
    const kept = await patch(user.id, { op: 'remove', path: 'active' });
    expect(kept.status, kept.text).toBe(400);
    expect(kept.body.scimType).toBe('invalidValue');
    expect((await get(user.id)).body.active).toBe(true);
    expect(await upstreamOf(user.userName)).toBeDefined();

    const off = await patch(user.id, { op: 'replace', path: 'active', value: false });
    expect(off.status, off.text).toBe(200);
    const still = await patch(user.id, { op: 'remove', path: 'active' });
    expect(still.status, still.text).toBe(400);
    expect((await get(user.id)).body.active).toBe(false);
    expect(await upstreamOf(user.userName)).toBeUndefined();
  });
});

describe('attributes / excludedAttributes with a value filter where a name belongs', () => {
  it('emails[type eq "work"] is read as emails, never silently dropped', async () => {
    const user = await create({
      emails: [
        { value: 'w@example.com', type: 'work', primary: true },
        { value: 'h@example.com', type: 'home' },
      ],
    });
    const q = (name: string, value: string) => `?${name}=${encodeURIComponent(value)}`;
    const one = await get(user.id, q('attributes', 'emails[type eq "work"]'));
    expect(one.status, one.text).toBe(200);
    expect(one.body.emails).toHaveLength(2);
    expect(one.body.userName).toBeUndefined();
    expect(one.body.schemas).toEqual([USER_SCHEMA]);

    const sub = await get(user.id, q('attributes', 'emails[type eq "work"].value,userName'));
    expect(sub.body.emails).toEqual([{ value: 'w@example.com' }, { value: 'h@example.com' }]);
    expect(sub.body.userName).toBe(user.userName);

    const listed = (await h.http.get(
      `/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${user.userName}"`)}&attributes=${encodeURIComponent('emails[type eq "work"]')}`,
    )) as unknown as Res;
    expect(listed.body.Resources[0].emails).toHaveLength(2);

    const excluded = await get(user.id, q('excludedAttributes', 'emails[type eq "home"]'));
    expect(excluded.body.emails).toBeUndefined();
    expect(excluded.body.userName).toBe(user.userName);

    const searched = (await h.http.post('/scim/v2/Users/.search').send({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
      filter: `userName eq "${user.userName}"`,
      attributes: ['Emails[Type eq "work"].Value'],
    })) as unknown as Res;
    expect(searched.body.Resources[0].emails).toEqual([
      { value: 'w@example.com' },
      { value: 'h@example.com' },
    ]);
  });

  it('brackets that do not pair are 400 invalidSyntax', async () => {
    const user = await create();
    for (const bad of ['emails[type eq "work"', 'emails]', 'emails[a][b]']) {
      const res = await get(user.id, `?attributes=${encodeURIComponent(bad)}`);
      expectScimError(res, 400, 'invalidSyntax');
      expect(res.body.detail).toContain('attributes');
    }
  });

  it('schemas lists only the extensions a projected resource still carries', async () => {
    const user = await create({ [ENTERPRISE]: { department: 'D' }, [VOLC]: { description: 'x' } });
    const res = await get(user.id, '?attributes=userName');
    expect(res.body.schemas).toEqual([USER_SCHEMA]);
    const ext = await get(user.id, `?attributes=${encodeURIComponent(`${ENTERPRISE}:department`)}`);
    expect(ext.body.schemas).toEqual([USER_SCHEMA, ENTERPRISE]);
  });
});

describe("POST's 201 body equals a later GET", () => {
  const comparable = (body: LooseJson) => {
    const { meta, ...rest } = body;
    const { location: _l, ...stableMeta } = meta as LooseJson;
    // supertest serves each request on its own port: compare $ref paths, not origins.
    return JSON.parse(
      JSON.stringify({ ...rest, meta: stableMeta }).replace(/http:\/\/127\.0\.0\.1:\d+/g, ''),
    );
  };

  it('users, with both extensions (identityType included in the 201)', async () => {
    const created = await create({
      displayName: 'Posted',
      [ENTERPRISE]: { department: 'Eng' },
      [VOLC]: { description: 'posted' },
    });
    expect(created[VOLC]).toMatchObject({ description: 'posted', source: 'Manual', identityType: 'Create' });
    const read = await get(created.id);
    expect(comparable(created)).toEqual(comparable(read.body));
    expect(created.meta.location).toMatch(new RegExp(`/Users/${created.id}$`));
  });

  it('users without extensions and without a displayName', async () => {
    const created = await create();
    expect(comparable(created)).toEqual(comparable((await get(created.id)).body));
  });

  it('groups, with and without members', async () => {
    const member = await create();
    for (const members of [[], [{ value: member.id }]]) {
      const res = (await h.http.post('/scim/v2/Groups').send({
        schemas: [GROUP_SCHEMA],
        displayName: `Edge ${uniqueName('g')}`,
        externalId: 'ext-g',
        members,
      })) as unknown as Res;
      expect(res.status, res.text).toBe(201);
      const read = (await h.http.get(`/scim/v2/Groups/${res.body.id}`)) as unknown as Res;
      expect(comparable(res.body)).toEqual(comparable(read.body));
    }
  });
});

describe('no JavaScript runtime text in any error detail', () => {
  const expectClean = (res: Res, what: unknown) => {
    const label = `${JSON.stringify(what)} → ${res.status} ${res.text}`;
    expect(res.status, label).toBeLessThan(500);
    if (res.status >= 400) {
      expect(res.body.schemas, label).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
      expect(res.body.detail, label).not.toMatch(RUNTIME_TEXT);
    }
  };

  const paths = fc.constantFrom(
    undefined,
    'displayName',
    'DisplayName',
    'title',
    'active',
    'userName',
    'name',
    'name.givenName',
    'name.formatted',
    'emails',
    'emails.value',
    'emails[type eq "work"]',
    'emails[type eq "work"].value',
    'emails[type eq "other"].Value',
    'emails[value eq "x"].primary',
    'phoneNumbers[type eq "mobile"].value',
    'addresses[type eq "work"].formatted',
    'addresses',
    'roles',
    'groups',
    'id',
    'meta',
    'meta.created',
    'externalId',
    'x509Certificates',
    'nosuchattribute',
    'name.nosuch',
    `${USER_SCHEMA}:displayName`,
    `${USER_SCHEMA}:name.familyName`,
    ENTERPRISE,
    `${ENTERPRISE}:department`,
    `${ENTERPRISE}:manager`,
    `${ENTERPRISE}:manager.value`,
    `${ENTERPRISE}:manager.displayName`,
    `${ENTERPRISE}:nosuch`,
    VOLC,
    `${VOLC}:description`,
    `${VOLC}:source`,
    'urn:example:unknown:2.0:User',
    'urn:example:unknown:2.0:User:attr',
    'emails[',
    'emails[type eq]',
    '',
  );
  const leaf = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 8 }),
    fc.constantFrom('True', 'false', '', 'work', 'a@example.com'),
  );
  const value = fc.letrec((tie) => ({
    any: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
    array: fc.array(tie('any'), { maxLength: 3 }),
    object: fc.dictionary(
      fc.constantFrom(
        'schemas',
        'value',
        'type',
        'primary',
        'display',
        'department',
        'description',
        'givenName',
        'displayName',
        'active',
        'emails',
        'name',
        'manager',
        'source',
        'identityType',
        'id',
        ENTERPRISE,
        VOLC,
        `${ENTERPRISE}:department`,
      ),
      tie('any'),
      { maxKeys: 4 },
    ),
  }));
  const operation = fc.record(
    {
      op: fc.constantFrom('add', 'replace', 'remove', 'Add', 'Replace', 'Remove'),
      path: paths,
      value: value.any,
    },
    { requiredKeys: ['op'] },
  );

  it('a corpus of odd-but-valid PATCH shapes on a user: no 5xx, no runtime message', async () => {
    const user = await create({ [ENTERPRISE]: { department: 'D', manager: { value: 'm1' } }, title: 'T' });
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 3 }), async (ops) => {
        const clean = ops.map((o) => (o.path === undefined ? { op: o.op, value: o.value } : o));
        const res = await patch(user.id, ...clean);
        expectClean(res, clean);
        // Keep the user in shape for the next case when an operation changed its name.
        if (res.status === 200 && res.body.userName !== user.userName)
          await patch(user.id, { op: 'replace', path: 'userName', value: user.userName });
      }),
      {
        numRuns: Number(process.env.EDGE_RUNS ?? 250),
        seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined,
      },
    );
  });

  it('fixed shapes that used to leak runtime text', async () => {
    const user = await create({ [ENTERPRISE]: { department: 'D' } });
    const shapes: Record<string, unknown>[][] = [
      [{ op: 'remove', path: ENTERPRISE }],
      [{ op: 'add', path: ENTERPRISE, value: { schemas: [ENTERPRISE], department: 'x' } }],
      [{ op: 'add', path: ENTERPRISE, value: 'not an object' }],
      [{ op: 'replace', path: ENTERPRISE, value: null }],
      [{ op: 'add', value: { schemas: [USER_SCHEMA], title: 'x' } }],
      [{ op: 'replace', value: { [ENTERPRISE]: { schemas: [ENTERPRISE], department: 'y' } } }],
      [{ op: 'remove', path: `${ENTERPRISE}:manager.value` }],
      [
        { op: 'remove', path: 'name.givenName' },
        { op: 'remove', path: 'name' },
      ],
      [{ op: 'add', path: 'emails[type eq "work"].value', value: { nested: true } }],
      [{ op: 'replace', path: 'emails', value: [null] }],
      [{ op: 'add', path: 'emails', value: [[]] }],
      [{ op: 'replace', path: 'name', value: [] }],
    ];
    for (const ops of shapes) expectClean(await patch(user.id, ...ops), ops);
  });

  it('odd POST and PUT bodies (odd values under real attribute names) give no 5xx and no runtime message', async () => {
    const user = await create();
    const body = fc.dictionary(
      fc.constantFrom(
        'name',
        'emails',
        'phoneNumbers',
        'addresses',
        'roles',
        'active',
        'title',
        ENTERPRISE,
        VOLC,
        'schemas',
        'meta',
        'groups',
        'x509Certificates',
      ),
      value.any,
      { maxKeys: 4 },
    );
    await fc.assert(
      fc.asyncProperty(body, fc.boolean(), async (extra, put) => {
        const sent = { ...extra, userName: put ? user.userName : uniqueName('odd') };
        const res = (put
          ? await h.http.put(`/scim/v2/Users/${user.id}`).send(sent)
          : await h.http.post('/scim/v2/Users').send(sent)) as unknown as Res;
        expectClean(res, sent);
        if (res.status === 201) await h.http.delete(`/scim/v2/Users/${res.body.id}`);
      }),
      { numRuns: 120 },
    );
  });

  it('groups: odd PATCH shapes give no 5xx and no runtime message', async () => {
    const member = await create();
    const group = (await h.http
      .post('/scim/v2/Groups')
      .send({ schemas: [GROUP_SCHEMA], displayName: `Odd ${uniqueName('g')}` })) as unknown as Res;
    expect(group.status, group.text).toBe(201);
    const groupPaths = fc.constantFrom(
      undefined,
      'displayName',
      'members',
      'members.value',
      `members[value eq "${member.id}"]`,
      'externalId',
      'id',
      'nosuch',
    );
    const groupOp = fc.record(
      {
        op: fc.constantFrom('add', 'replace', 'remove', 'Remove'),
        path: groupPaths,
        value: fc.oneof(
          value.any,
          fc.constant([{ value: member.id }]),
          fc.constant({ members: [{ value: member.id }] }),
        ),
      },
      { requiredKeys: ['op'] },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(groupOp, { minLength: 1, maxLength: 2 }), async (ops) => {
        const clean = ops.map((o) => (o.path === undefined ? { op: o.op, value: o.value } : o));
        const res = (await h.http
          .patch(`/scim/v2/Groups/${group.body.id}`)
          .send(patchBody(...clean))) as unknown as Res;
        expectClean(res, clean);
      }),
      { numRuns: 100 },
    );
  });

  it('malformed JSON and broken filters are described, not echoed from the parser', async () => {
    const json = (await h.http
      .post('/scim/v2/Users')
      .set('Content-Type', 'application/scim+json')
      .send('{"userName": "x",}')) as unknown as Res;
    expectScimError(json, 400, 'invalidSyntax');
    expect(json.body.detail).toMatch(/not valid JSON/);
    expect(json.body.detail).not.toMatch(RUNTIME_TEXT);
    for (const filter of [
      'userName eq',
      '(',
      'emails[type eq "work"',
      'userName eq "a" and',
      '"x"',
      'a[b[c]]',
    ]) {
      const res = (await h.http.get(`/scim/v2/Users?filter=${encodeURIComponent(filter)}`)) as unknown as Res;
      expectClean(res, filter);
      expect(res.status, filter).toBe(400);
    }
  });
});
