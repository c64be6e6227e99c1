import { beforeAll, describe, expect, it } from 'vitest';
import { normalizePatchOperations, normalizeResourceBody } from '../../src/scim-model/normalize.js';
import { configureScimmy } from '../../src/scim-model/schemas.js';
import { ScimError } from '../../src/scim-model/scim-error.js';
import { parseUserBody } from '../../src/scim-model/user-input.js';
import { applyUserPatch, parsePatchBody } from '../../src/scim-model/user-patch.js';
import { canonicalUserPath } from '../../src/scim-model/user-paths.js';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const VOLC = 'urn:volcengine:params:scim:schemas:extension:cloudidentity:2.0:User';
const MANAGER = `${ENTERPRISE}:manager`;
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

function scimError(fn: () => unknown): ScimError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ScimError);
    return e as ScimError;
  }
  throw new Error('no error thrown');
}
async function scimErrorAsync(fn: () => Promise<unknown>): Promise<ScimError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ScimError);
    return e as ScimError;
  }
  throw new Error('no error thrown');
}

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

describe('parsePatchBody and applyUserPatch', () => {
  const current = {
    schemas: [USER, VOLC],
    id: 'id1',
    userName: 'u@x',
    name: { givenName: 'G', familyName: 'F' },
    emails: [{ type: 'work', value: 'w@x', primary: true }],
    active: true,
    [VOLC]: { description: 'old', source: 'Manual' },
    meta: { resourceType: 'User', version: 'W/"1"' },
  };

  it('checks the envelope', () => {
    expect(scimError(() => parsePatchBody({ schemas: [USER], Operations: [{}] })).scimType).toBe(
      'invalidSyntax',
    );
    expect(scimError(() => parsePatchBody({ schemas: [PATCH] })).scimType).toBe('invalidValue');
    expect(scimError(() => parsePatchBody({ schemas: [PATCH], Operations: [] })).scimType).toBe(
      'invalidValue',
    );
    expect(parsePatchBody({ schemas: [PATCH], operations: [{ op: 'add' }] }).operations).toHaveLength(1);
  });

  it('applies Entra default shapes', async () => {
    const out = await applyUserPatch(
      [
        { op: 'Replace', path: 'name.familyName', value: 'New' },
        { op: 'Add', path: 'nickName', value: 'nn' },
        { op: 'Add', path: MANAGER, value: 'M1' },
        { op: 'Replace', path: 'active', value: 'False' },
      ],
      current,
    );
    expect(out.active).toBe(false);
    expect(out.description).toBe('old');
    expect(out.attributes).toMatchObject({
      nickName: 'nn',
      name: { familyName: 'New', givenName: 'G' },
      [ENTERPRISE]: { manager: { value: 'M1' } },
    });
  });

  it('applies dotted keys in a path-less replace (aadOptscim062020)', async () => {
    const out = await applyUserPatch(
      [
        {
          op: 'replace',
          value: { 'name.givenName': 'X', [`${ENTERPRISE}:employeeNumber`]: '9', active: false },
        },
      ],
      current,
    );
    expect(out.active).toBe(false);
    expect(out.attributes).toMatchObject({ name: { givenName: 'X' }, [ENTERPRISE]: { employeeNumber: '9' } });
  });

  it('handles the Volcengine extension by hand, with source read-only', async () => {
    expect(
      (await applyUserPatch([{ op: 'replace', path: `${VOLC}:description`, value: 'new' }], current))
        .description,
    ).toBe('new');
    expect(
      (await applyUserPatch([{ op: 'remove', path: `${VOLC}:description` }], current)).description,
    ).toBeUndefined();
    expect(
      (await applyUserPatch([{ op: 'replace', value: { [`${VOLC}:description`]: 'dotted' } }], current))
        .description,
    ).toBe('dotted');
    const err = await scimErrorAsync(() =>
      applyUserPatch([{ op: 'replace', path: `${VOLC}:source`, value: 'Sync' }], current),
    );
    expect(err.scimType).toBe('mutability');
  });

  it('reports scimmy failures as SCIM 400s', async () => {
    expect((await scimErrorAsync(() => applyUserPatch([{ op: 'remove' }], current))).scimType).toBe(
      'noTarget',
    );
    expect(
      (await scimErrorAsync(() => applyUserPatch([{ op: 'add', path: 'title' }], current))).scimType,
    ).toBe('invalidValue');
    expect(
      (await scimErrorAsync(() => applyUserPatch([{ op: 'replace', path: 'active', value: 'x' }], current)))
        .status,
    ).toBe(400);
  });
});

describe('canonicalUserPath', () => {
  it.each([
    ['emails[Type eq "Work" and Value co "X"].Value', 'emails[type eq "Work" and value co "X"].value'],
    ['Name.GivenName', 'name.givenName'],
    ['ACTIVE', 'active'],
    [`${ENTERPRISE}:Department`, `${ENTERPRISE}:department`],
    [`${ENTERPRISE.toUpperCase()}:manager.Value`, `${MANAGER}.value`],
    // The core URN is dropped: scimmy's PatchOp only understands the short form.
    [`${USER}:UserName`, 'userName'],
    [`${VOLC}:description`, `${VOLC}:description`],
    ['unknownThing.Sub', 'unknownThing.Sub'],
    [ENTERPRISE, ENTERPRISE],
  ])('%s → %s', (path, expected) => {
    expect(canonicalUserPath(path)).toBe(expected);
  });

  it('lets capitalised paths and value keys reach existing elements', async () => {
    const current = {
      schemas: [USER],
      id: 'x',
      userName: 'u',
      emails: [{ type: 'other', value: 'o@x' }],
      addresses: [{ type: 'work', formatted: 'F' }],
    };
    const out = await applyUserPatch(
      [
        { op: 'Replace', path: 'emails[type eq "other"].Value', value: 'o2@x' },
        { op: 'Replace', path: 'addresses[Type eq "work"].Formatted', value: 'F2' },
        { op: 'replace', value: { 'Name.FamilyName': 'Fam', Title: 'T' } },
      ],
      current,
    );
    expect(out.attributes).toMatchObject({
      emails: [{ type: 'other', value: 'o2@x' }],
      addresses: [{ type: 'work', formatted: 'F2' }],
      name: { familyName: 'Fam' },
      title: 'T',
    });
  });
});
