import { beforeAll, describe, expect, it } from 'vitest';
import { normalizePatchOperations, normalizeResourceBody } from '../../src/scim-model/normalize.js';
import { configureScimmy } from '../../src/scim-model/schemas.js';
import { ENTERPRISE, MANAGER, scimError } from './helpers.js';

beforeAll(() => configureScimmy());

describe('normalizeResourceBody', () => {
  it('turns string booleans into booleans, any case, at any depth', () => {
    const out = normalizeResourceBody({
      active: 'True',
      emails: [{ value: 'a@x', primary: 'FALSE' }],
      roles: [{ value: 'r', primary: 'true' }],
      title: 'True',
    });
    expect(out).toMatchObject({
      active: true,
      emails: [{ primary: false }],
      roles: [{ primary: true }],
      title: 'True',
    });
  });

  it('makes a bare-string manager complex and drops an empty one', () => {
    expect(normalizeResourceBody({ [ENTERPRISE]: { manager: 'M1' } })[ENTERPRISE]).toEqual({
      manager: { value: 'M1' },
    });
    expect(
      normalizeResourceBody({ [ENTERPRISE]: { manager: { value: '' }, department: 'd' } })[ENTERPRISE],
    ).toEqual({
      department: 'd',
    });
  });

  it('leaves the input untouched and refuses non-objects', () => {
    const input = { active: 'True' };
    normalizeResourceBody(input);
    expect(input.active).toBe('True');
    for (const bad of [null, [], 'x', 1])
      expect(scimError(() => normalizeResourceBody(bad)).scimType).toBe('invalidSyntax');
  });
});

describe('normalizePatchOperations', () => {
  const current = { userName: 'u', emails: [{ type: 'work', value: 'w@x' }] };

  it('lowercases ops and converts string booleans on boolean paths', () => {
    expect(normalizePatchOperations([{ op: 'Replace', path: 'active', value: 'False' }], current)).toEqual([
      { op: 'replace', path: 'active', value: false },
    ]);
    expect(normalizePatchOperations([{ op: 'replace', value: { active: 'False' } }], current)).toEqual([
      { op: 'replace', value: { active: false } },
    ]);
  });

  it('replace of an extension sub-attribute whose parent is absent becomes an add of the parent', () => {
    expect(
      normalizePatchOperations([{ op: 'Replace', path: `${MANAGER}.value`, value: 'M1' }], current),
    ).toEqual([{ op: 'add', path: MANAGER, value: { value: 'M1' } }]);
    const withManager = { ...current, [ENTERPRISE]: { manager: { value: 'M0' } } };
    expect(
      normalizePatchOperations([{ op: 'replace', path: `${MANAGER}.value`, value: 'M1' }], withManager),
    ).toEqual([{ op: 'replace', path: `${MANAGER}.value`, value: 'M1' }]);
  });

  it('manager as a bare string, and {value: ""} meaning remove', () => {
    expect(normalizePatchOperations([{ op: 'Add', path: MANAGER, value: 'M1' }], current)).toEqual([
      { op: 'add', path: MANAGER, value: { value: 'M1' } },
    ]);
    expect(
      normalizePatchOperations([{ op: 'Replace', path: MANAGER, value: { value: '' } }], current),
    ).toEqual([{ op: 'remove', path: MANAGER }]);
  });

  it('a filtered path on an absent element becomes an add of a new element', () => {
    expect(
      normalizePatchOperations(
        [{ op: 'Add', path: 'addresses[type eq "work"].formatted', value: '1 Way' }],
        current,
      ),
    ).toEqual([{ op: 'add', path: 'addresses', value: [{ type: 'work', formatted: '1 Way' }] }]);
    expect(
      normalizePatchOperations(
        [{ op: 'Replace', path: 'emails[type eq "other"].Value', value: 'o@x' }],
        current,
      ),
    ).toEqual([{ op: 'add', path: 'emails', value: [{ type: 'other', value: 'o@x' }] }]);
    // present element: left for scimmy
    expect(
      normalizePatchOperations(
        [{ op: 'replace', path: 'emails[type eq "work"].value', value: 'n@x' }],
        current,
      ),
    ).toEqual([{ op: 'replace', path: 'emails[type eq "work"].value', value: 'n@x' }]);
  });

  it('drops id from a path-less value (Okta)', () => {
    expect(
      normalizePatchOperations([{ op: 'replace', value: { id: 'x', displayName: 'd' } }], current),
    ).toEqual([{ op: 'replace', value: { displayName: 'd' } }]);
  });

  it('rejects unknown ops, non-object operations and non-string paths', () => {
    expect(scimError(() => normalizePatchOperations([{ op: 'move', path: 'a' }], current)).scimType).toBe(
      'invalidSyntax',
    );
    expect(scimError(() => normalizePatchOperations(['x'], current)).scimType).toBe('invalidValue');
    expect(
      scimError(() => normalizePatchOperations([{ op: 'add', path: 5, value: 1 }], current)).scimType,
    ).toBe('invalidPath');
    expect(scimError(() => normalizePatchOperations('nope', current)).scimType).toBe('invalidValue');
  });
});
