import { describe, expect, it } from 'vitest';
import { listParams, listResponse, project } from '../../src/scim-http/http.js';
import { ScimError } from '../../src/scim-model/scim-error.js';

const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const user = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE],
  id: 'u1',
  userName: 'alice',
  name: { givenName: 'Alice', familyName: 'Liddell' },
  emails: [
    { value: 'a@w', type: 'work', primary: true },
    { value: 'a@h', type: 'home' },
  ],
  active: true,
  [ENTERPRISE]: { department: 'D', employeeNumber: '7' },
  meta: { resourceType: 'User', version: 'W/"1"' },
};

describe('project', () => {
  it('returns the resource untouched without attributes/excludedAttributes', () => {
    expect(project(user)).toBe(user);
  });

  it('attributes: only the named ones, plus id and schemas; names are case-insensitive', () => {
    // schemas keeps an extension only while the projection carries it.
    const core = [user.schemas[0]];
    expect(project(user, ['USERNAME'])).toEqual({ schemas: core, id: 'u1', userName: 'alice' });
    expect(project(user, [ENTERPRISE]).schemas).toEqual(user.schemas);
    expect(project(user, ['name.familyName', 'emails.value'])).toEqual({
      schemas: core,
      id: 'u1',
      name: { familyName: 'Liddell' },
      emails: [{ value: 'a@w' }, { value: 'a@h' }],
    });
    expect(project(user, ['emails.value', 'emails.type']).emails).toEqual([
      { value: 'a@w', type: 'work' },
      { value: 'a@h', type: 'home' },
    ]);
    expect(project(user, [`${ENTERPRISE}:department`])[ENTERPRISE]).toEqual({ department: 'D' });
    expect(project(user, [ENTERPRISE])[ENTERPRISE]).toEqual(user[ENTERPRISE]);
    expect(project(user, ['urn:ietf:params:scim:schemas:core:2.0:User:userName']).userName).toBe('alice');
    expect(project(user, ['nosuch'])).toEqual({ schemas: core, id: 'u1' });
  });

  it('excludedAttributes: drops the named ones, never id or schemas, without mutating the input', () => {
    const out = project(user, undefined, [
      'emails',
      'name.givenName',
      'id',
      'schemas',
      `${ENTERPRISE}:employeeNumber`,
    ]);
    expect(out.emails).toBeUndefined();
    expect(out.name).toEqual({ familyName: 'Liddell' });
    expect(out.id).toBe('u1');
    expect(out.schemas).toEqual(user.schemas);
    expect(out[ENTERPRISE]).toEqual({ department: 'D' });
    expect(user.name.givenName).toBe('Alice');
    expect(user[ENTERPRISE].employeeNumber).toBe('7');
  });
});

describe('listParams', () => {
  it('defaults, clamps and coerces', () => {
    expect(listParams({}, 100, 200)).toEqual({
      filter: undefined,
      startIndex: 1,
      count: 100,
      attributes: undefined,
      excludedAttributes: undefined,
    });
    expect(listParams({ startIndex: '0', count: '-3' }, 100, 200)).toMatchObject({ startIndex: 1, count: 0 });
    expect(listParams({ startIndex: -7, count: 5000 }, 100, 200)).toMatchObject({
      startIndex: 1,
      count: 200,
    });
    expect(listParams({ startIndex: ' 11 ', count: '10' }, 100, 200)).toMatchObject({
      startIndex: 11,
      count: 10,
    });
    expect(listParams({ filter: '   ' }, 100, 200).filter).toBeUndefined();
  });

  it('reads attribute lists from comma-separated strings or arrays', () => {
    expect(listParams({ attributes: 'userName, name.givenName,,' }, 1, 1).attributes).toEqual([
      'userName',
      'name.givenName',
    ]);
    expect(listParams({ excludedAttributes: ['emails', 'meta'] }, 1, 1).excludedAttributes).toEqual([
      'emails',
      'meta',
    ]);
  });

  it('rejects non-integers and non-string filters', () => {
    for (const bad of [{ count: 'ten' }, { count: '1.5' }, { startIndex: 'x' }, { startIndex: Number.NaN }]) {
      let error: unknown;
      try {
        listParams(bad, 100, 200);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(bad)).toBeInstanceOf(ScimError);
      expect((error as ScimError).status).toBe(400);
    }
    expect(() => listParams({ filter: ['a', 'b'] }, 1, 1)).toThrow(ScimError);
  });
});

describe('listResponse', () => {
  it('has integer fields and itemsPerPage = page length', () => {
    expect(listResponse(42, 11, [{ id: 'a' }, { id: 'b' }])).toEqual({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
      totalResults: 42,
      startIndex: 11,
      itemsPerPage: 2,
      Resources: [{ id: 'a' }, { id: 'b' }],
    });
  });
});
