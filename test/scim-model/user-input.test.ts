import { beforeAll, describe, expect, it } from 'vitest';
import { configureScimmy } from '../../src/scim-model/schemas.js';
import { parseUserBody } from '../../src/scim-model/user-input.js';
import { ENTERPRISE, scimError, USER, VOLC } from './helpers.js';

beforeAll(() => configureScimmy());

describe('parseUserBody', () => {
  it('splits out externalId, active, description and id; drops readOnly and password', () => {
    const input = parseUserBody({
      schemas: [USER, ENTERPRISE],
      id: 'abc',
      userName: 'u@x',
      externalId: 'e',
      active: 'False',
      password: 'secret',
      groups: [{ value: 'g' }],
      meta: { resourceType: 'User' },
      roles: [],
      [VOLC]: { description: 'hello', source: 'Manual' },
      [ENTERPRISE]: { employeeNumber: '7' },
    });
    expect(input).toMatchObject({ externalId: 'e', active: false, description: 'hello', id: 'abc' });
    expect(input.attributes).toMatchObject({ userName: 'u@x', [ENTERPRISE]: { employeeNumber: '7' } });
    for (const gone of ['password', 'groups', 'meta', 'id', 'externalId', 'active', 'schemas', VOLC])
      expect(input.attributes[gone], gone).toBeUndefined();
  });

  it('accepts a body without schemas, and free text in profileUrl', () => {
    expect(parseUserBody({ userName: 'u' }).attributes.userName).toBe('u');
    expect(parseUserBody({ userName: 'u', profileUrl: 'NOT A URL' }).attributes.profileUrl).toBe('NOT A URL');
  });

  it('names what is wrong', () => {
    expect(scimError(() => parseUserBody({ schemas: [USER] })).detail).toMatch(/userName/);
    expect(scimError(() => parseUserBody({ schemas: ['urn:x'], userName: 'u' })).scimType).toBe(
      'invalidSyntax',
    );
    expect(scimError(() => parseUserBody({ userName: 5 })).scimType).toBe('invalidValue');
    expect(scimError(() => parseUserBody({ userName: 'u', active: 'maybe' })).detail).toMatch(/active/);
    expect(scimError(() => parseUserBody({ userName: 'u', [ENTERPRISE]: 'x' })).detail).toMatch(/enterprise/);
    expect(scimError(() => parseUserBody({ userName: 'u', [VOLC]: { description: 3 } })).detail).toMatch(
      /description/,
    );
  });
});
