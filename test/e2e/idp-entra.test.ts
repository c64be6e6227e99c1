// Microsoft Entra ID, replayed (scim-idp-behaviour.md §2.2, §2.3, §2.5): test connection, schema
// discovery, match-then-create, the PATCH shapes Entra sends without and with aadOptscim062020,
// disable, hard delete. The tenant URL carries `?aadOptscim062020`, so every request does too.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';
import {
  ENTERPRISE,
  expectListResponse,
  expectScimError,
  LIST_SCHEMA,
  type LooseJson,
  type Res,
  SCIM_CONTENT_TYPE,
  USER_SCHEMA,
  uniqueName,
} from './users-support.js';

const ENTRA_CT = 'application/scim+json; charset=utf-8';
const FLAG = 'aadOptscim062020';
const MANAGER = `${ENTERPRISE}:manager`;

type Json = LooseJson;

/** What Entra POSTs for a new user (§2.2 step 3). */
function entraCreateBody(upn: string, objectId: string): Json {
  return {
    schemas: [USER_SCHEMA, ENTERPRISE],
    externalId: objectId,
    userName: upn,
    active: 'True',
    displayName: 'Britta Simon',
    emails: [{ primary: true, type: 'work', value: upn }],
    meta: { resourceType: 'User' },
    name: { formatted: 'Britta Simon', familyName: 'Simon', givenName: 'Britta' },
    roles: [],
    [ENTERPRISE]: { employeeNumber: '701984', department: 'Sales' },
  };
}

describe('Entra ID request sequences', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const users = (query: string) => `/scim/v2/Users?${FLAG}${query ? `&${query}` : ''}`;
  const user = (id: string) => `/scim/v2/Users/${id}?${FLAG}`;
  const filter = (f: string) => users(`filter=${encodeURIComponent(f)}`);
  const patch = async (id: string, Operations: Json[]) =>
    (await h.http
      .patch(user(id))
      .set('Content-Type', ENTRA_CT)
      .send(
        JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations }),
      )) as unknown as Res;
  const upstreamOf = async (userName: string) =>
    (await h.upstream()).users.find((u) => u.UserName.toLowerCase() === userName.toLowerCase());

  /** Match (filter) then create, as Entra's initial cycle does. */
  async function matchThenCreate(upn: string): Promise<Json> {
    const match = (await h.http.get(filter(`userName eq "${upn}"`))) as unknown as Res;
    expectListResponse(match);
    expect(match.body.totalResults).toBe(0);
    const created = (await h.http
      .post(users(''))
      .set('Content-Type', ENTRA_CT)
      .send(JSON.stringify(entraCreateBody(upn, randomUUID())))) as unknown as Res;
    expect(created.status, created.text).toBe(201);
    expect(created.headers['content-type']).toMatch(SCIM_CONTENT_TYPE);
    return created.body;
  }

  it('test connection: filter on a random GUID is 200 with an empty ListResponse (no Accept, no Content-Type)', async () => {
    const res = (await h.http
      .get(filter(`userName eq "${randomUUID()}"`))
      .unset('Accept')
      .unset('Content-Type')) as unknown as Res;
    expectListResponse(res);
    expect(res.body.totalResults).toBe(0);
    const byExt = (await h.http.get(filter(`externalId eq "${randomUUID()}"`))) as unknown as Res;
    expect(byExt.body.totalResults).toBe(0);
  });

  it('GET /Schemas: a ListResponse with the User and enterprise schemas and no null values', async () => {
    const res = (await h.http.get(`/scim/v2/Schemas?${FLAG}`)) as unknown as Res;
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(SCIM_CONTENT_TYPE);
    expect(res.body.schemas).toEqual([LIST_SCHEMA]);
    const ids = (res.body.Resources as Json[]).map((s) => s.id);
    expect(ids).toContain(USER_SCHEMA);
    expect(ids).toContain(ENTERPRISE);
    expect(res.text).not.toMatch(/:null[,}]/);
    const core = (res.body.Resources as Json[]).find((s) => s.id === USER_SCHEMA)!;
    const userName = (core.attributes as Json[]).find((a) => a.name === 'userName')!;
    expect(userName).toMatchObject({ required: true, uniqueness: 'server', caseExact: false });
    const spc = (await h.http.get(`/scim/v2/ServiceProviderConfig?${FLAG}`)) as unknown as Res;
    expect(spc.status).toBe(200);
    expect(spc.body).toMatchObject({ patch: { supported: true }, etag: { supported: true } });
  });

  it('match then create with the Entra POST body ("True", meta.resourceType, roles: [], enterprise ext)', async () => {
    const upn = uniqueName('britta', 'contoso.com');
    const body = await matchThenCreate(upn);
    expect(body).toMatchObject({
      userName: upn,
      active: true,
      displayName: 'Britta Simon',
      name: { familyName: 'Simon', givenName: 'Britta' },
      [ENTERPRISE]: { employeeNumber: '701984', department: 'Sales' },
    });
    expect(body.meta.resourceType).toBe('User');
    expect(await upstreamOf(upn)).toMatchObject({ UserName: upn, DisplayName: 'Britta Simon', Email: upn });
    // the next cycle matches it, in another case too (validator: "different case")
    const again = (await h.http.get(filter(`userName eq "${upn.toUpperCase()}"`))) as unknown as Res;
    expect(again.body.totalResults).toBe(1);
    expect(again.body.Resources[0].id).toBe(body.id);
    // and a duplicate create (validator) is 409
    const dup = (await h.http
      .post(users(''))
      .set('Content-Type', ENTRA_CT)
      .send(JSON.stringify(entraCreateBody(upn, randomUUID())))) as unknown as Res;
    expectScimError(dup, 409, 'uniqueness');
  });

  it('updates without aadOptscim062020: capitalised ops, filtered paths, string booleans, bare manager', async () => {
    const upn = uniqueName('default', 'contoso.com');
    const created = await matchThenCreate(upn);
    const id = created.id as string;
    const renamed = uniqueName('default.renamed', 'contoso.com');
    const newMail = uniqueName('mail', 'contoso.com');
    const manager = await matchThenCreate(uniqueName('manager', 'contoso.com'));

    const steps: Array<[string, Json[]]> = [
      ['email', [{ op: 'Replace', path: 'emails[type eq "work"].value', value: newMail }]],
      ['familyName', [{ op: 'Replace', path: 'name.familyName', value: 'Simon-Jones' }]],
      ['userName', [{ op: 'Replace', path: 'userName', value: renamed }]],
      [
        'single-valued Add',
        [
          { op: 'Add', path: 'nickName', value: 'Brit' },
          { op: 'Add', path: 'title', value: 'Sales Lead' },
          { op: 'Add', path: 'displayName', value: 'Britta S.' },
        ],
      ],
      ['manager', [{ op: 'Add', path: MANAGER, value: manager.id }]],
      [
        'absent elements',
        [
          { op: 'Add', path: 'addresses[type eq "work"].formatted', value: '1 Microsoft Way' },
          { op: 'Add', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 425 555 0100' },
          { op: 'Add', path: 'emails[type eq "other"].Value', value: 'other@contoso.com' },
        ],
      ],
      ['enterprise', [{ op: 'Replace', path: `${ENTERPRISE}:department`, value: 'Marketing' }]],
      [
        // the default mappings' capitalised sub-attributes, now on elements that exist
        'existing elements, capitalised',
        [
          { op: 'Replace', path: 'emails[type eq "other"].Value', value: 'other2@contoso.com' },
          { op: 'Replace', path: 'addresses[type eq "work"].Formatted', value: '2 Microsoft Way' },
          { op: 'Replace', path: 'Name.GivenName', value: 'Britt' },
        ],
      ],
    ];
    for (const [label, ops] of steps) {
      const res = await patch(id, ops);
      expect(res.status, `${label}: ${res.text}`).toBe(200);
      expect(res.headers['content-type']).toMatch(SCIM_CONTENT_TYPE);
    }
    const got = (await h.http.get(user(id))) as unknown as Res;
    expect(got.body).toMatchObject({
      id,
      userName: renamed,
      nickName: 'Brit',
      title: 'Sales Lead',
      displayName: 'Britta S.',
      name: { familyName: 'Simon-Jones', givenName: 'Britt' },
      addresses: [{ type: 'work', formatted: '2 Microsoft Way' }],
      phoneNumbers: [{ type: 'mobile', value: '+1 425 555 0100' }],
      [ENTERPRISE]: { manager: { value: manager.id }, department: 'Marketing', employeeNumber: '701984' },
    });
    const emails = got.body.emails as Json[];
    expect(emails).toContainEqual(expect.objectContaining({ type: 'work', value: newMail }));
    expect(emails).toContainEqual(expect.objectContaining({ type: 'other', value: 'other2@contoso.com' }));
    expect(await upstreamOf(renamed)).toMatchObject({
      DisplayName: 'Britta S.',
      Email: newMail,
      Phone: '+1 425 555 0100',
    });
    expect(await upstreamOf(upn)).toBeUndefined();

    // manager removal arrives as replace {value: ""}
    const removed = await patch(id, [{ op: 'Replace', path: MANAGER, value: { value: '' } }]);
    expect(removed.status, removed.text).toBe(200);
    expect(removed.body[ENTERPRISE].manager).toBeUndefined();
    expect(removed.body[ENTERPRISE].department).toBe('Marketing');

    // disable: a string "False"; the user stays readable and filterable
    const disabled = await patch(id, [{ op: 'Replace', path: 'active', value: 'False' }]);
    expect(disabled.status, disabled.text).toBe(200);
    expect(disabled.body.active).toBe(false);
    expect(await upstreamOf(renamed)).toBeUndefined();
    expect(((await h.http.get(user(id))) as unknown as Res).body).toMatchObject({
      active: false,
      userName: renamed,
    });
    const filtered = (await h.http.get(filter(`userName eq "${renamed}"`))) as unknown as Res;
    expect(filtered.body.totalResults).toBe(1);
    expect(filtered.body.Resources[0]).toMatchObject({ id, active: false });

    // re-enable: "True"
    const enabled = await patch(id, [{ op: 'Replace', path: 'active', value: 'True' }]);
    expect(enabled.status, enabled.text).toBe(200);
    expect(enabled.body).toMatchObject({ id, active: true, userName: renamed });
    expect(await upstreamOf(renamed)).toMatchObject({ DisplayName: 'Britta S.', Email: newMail });
  });

  it('a filtered PATCH path matches an element whose type differs only in letter case', async () => {
    const created = await matchThenCreate(uniqueName('typecase', 'contoso.com'));
    const id = created.id as string;
    const mail = uniqueName('typecase.mail', 'contoso.com');
    const res = await h.http
      .patch(user(id))
      .set('Content-Type', ENTRA_CT)
      .send({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'Replace', path: 'emails[type eq "Work"].value', value: mail }],
      });
    expect(res.status, res.text).toBe(200);
    const work = (res.body.emails as Json[]).filter((e) => String(e.type).toLowerCase() === 'work');
    expect(work).toHaveLength(1);
    expect(work[0].value).toBe(mail);
    expect((await upstreamOf(created.userName as string))?.Email).toBe(mail);
  });

  it('updates with aadOptscim062020: lower-case ops, path-less replace with dotted keys, real booleans', async () => {
    const upn = uniqueName('compliant', 'contoso.com');
    const created = await matchThenCreate(upn);
    const id = created.id as string;
    const res = await patch(id, [
      {
        op: 'replace',
        value: {
          'name.givenName': 'Brittany',
          'name.familyName': 'Simons',
          displayName: 'Brittany Simons',
          [`${ENTERPRISE}:employeeNumber`]: '9000',
          [`${ENTERPRISE}:costCenter`]: 'CC-1',
          title: 'Director',
        },
      },
      { op: 'replace', path: 'emails[type eq "work"].value', value: `x.${upn}` },
      { op: 'add', path: 'phoneNumbers[type eq "work"].value', value: '+1 206 555 0199' },
    ]);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      displayName: 'Brittany Simons',
      title: 'Director',
      name: { givenName: 'Brittany', familyName: 'Simons' },
      [ENTERPRISE]: { employeeNumber: '9000', costCenter: 'CC-1', department: 'Sales' },
    });
    expect(await upstreamOf(upn)).toMatchObject({
      DisplayName: 'Brittany Simons',
      Email: `x.${upn}`,
      Phone: '+1 206 555 0199',
    });

    const disabled = await patch(id, [{ op: 'replace', path: 'active', value: false }]);
    expect(disabled.status, disabled.text).toBe(200);
    expect(disabled.body.active).toBe(false);
    const filtered = (await h.http.get(filter(`userName eq "${upn}"`))) as unknown as Res;
    expect(filtered.body.Resources[0]).toMatchObject({ id, active: false });
    const enabled = await patch(id, [{ op: 'replace', path: 'active', value: true }]);
    expect(enabled.body.active).toBe(true);
  });

  it('accepts the SCIM Validator create payload and its verbose replace', async () => {
    const upn = uniqueName('validator', 'contoso.com');
    const res = (await h.http
      .post(users(''))
      .set('Content-Type', ENTRA_CT)
      .send(
        JSON.stringify({
          schemas: [USER_SCHEMA, ENTERPRISE],
          userName: upn,
          active: true,
          displayName: 'Valid Ator',
          title: 'QJZMWCRLUIXD',
          nickName: 'BYNKTWLBZAWN',
          profileUrl: 'HCYDGDSLBVRP',
          preferredLanguage: 'kn-IN',
          locale: 'LOJZETWEDHMQ',
          timezone: 'America/Nome',
          userType: 'EBDRRTLYRFCK',
          externalId: randomUUID(),
          name: {
            givenName: 'Val',
            familyName: 'Ator',
            formatted: 'Val Ator',
            middleName: 'M',
            honorificPrefix: 'Dr',
            honorificSuffix: 'III',
          },
          emails: [{ type: 'Work', value: upn, primary: true }],
          phoneNumbers: [
            { type: 'work', value: '+1 555 0100', primary: 'True' },
            { type: 'mobile', value: '+1 555 0101' },
            { type: 'fax', value: '+1 555 0102' },
          ],
          addresses: [
            {
              type: 'work',
              formatted: 'X',
              streetAddress: 'Y',
              locality: 'Z',
              region: 'R',
              postalCode: '9',
              country: 'US',
              primary: true,
            },
          ],
          roles: [{ primary: 'True', display: 'ZGDKVWTXUSLH', value: 'BWQDZNOQRNRP', type: 'YYUVBLMBYJTZ' }],
          [ENTERPRISE]: {
            employeeNumber: 'WHZKBHBJVPPW',
            costCenter: 'XUJPOJNSXNSU',
            organization: 'CDAOFTNMSSSU',
            division: 'KCGQPVDWFKUE',
            department: 'AFQYIRZAUWFI',
            manager: { value: 'IOHPGAGGPFMA' },
          },
        }),
      )) as unknown as Res;
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      profileUrl: 'HCYDGDSLBVRP',
      roles: [expect.objectContaining({ primary: true })],
    });
    const verbose = await patch(res.body.id, [
      { op: 'replace', path: 'title', value: 'NEWTITLE' },
      { op: 'replace', path: 'nickName', value: 'NEWNICK' },
      { op: 'replace', path: 'locale', value: 'NEWLOCALE' },
      { op: 'replace', path: 'name.middleName', value: 'NEWMIDDLE' },
      { op: 'replace', path: 'addresses[type eq "work"].locality', value: 'NEWLOCALITY' },
      { op: 'replace', path: 'phoneNumbers[type eq "fax"].value', value: '+1 555 0199' },
      { op: 'replace', path: `${ENTERPRISE}:division`, value: 'NEWDIVISION' },
      { op: 'replace', path: `${MANAGER}`, value: 'NEWMANAGER' },
    ]);
    expect(verbose.status, verbose.text).toBe(200);
    expect(verbose.body).toMatchObject({
      title: 'NEWTITLE',
      nickName: 'NEWNICK',
      locale: 'NEWLOCALE',
      name: { middleName: 'NEWMIDDLE' },
      addresses: [expect.objectContaining({ locality: 'NEWLOCALITY', streetAddress: 'Y' })],
      [ENTERPRISE]: { division: 'NEWDIVISION', manager: { value: 'NEWMANAGER' } },
    });
    expect(verbose.body.phoneNumbers).toContainEqual(
      expect.objectContaining({ type: 'fax', value: '+1 555 0199' }),
    );
    // the primary work number is the one CloudIdentity holds
    expect(await upstreamOf(upn)).toMatchObject({ Phone: '+1 555 0100' });
  });

  it('hard delete: 204, then 404 (twice), and the userName is free again', async () => {
    const upn = uniqueName('leaver', 'contoso.com');
    const created = await matchThenCreate(upn);
    await patch(created.id, [{ op: 'Replace', path: 'active', value: 'False' }]);
    const del = await h.http.delete(user(created.id));
    expect(del.status).toBe(204);
    expectScimError((await h.http.get(user(created.id))) as unknown as Res, 404);
    expectScimError((await h.http.delete(user(created.id))) as unknown as Res, 404);
    const match = (await h.http.get(filter(`userName eq "${upn}"`))) as unknown as Res;
    expect(match.body.totalResults).toBe(0);
    const again = await matchThenCreate(upn);
    expect(again.id).not.toBe(created.id);
    // deleting a user that never existed (validator preview) is 404
    expectScimError((await h.http.delete(user(randomUUID()))) as unknown as Res, 404);
  });
});
