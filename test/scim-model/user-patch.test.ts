import { beforeAll, describe, expect, it } from 'vitest';
import { configureScimmy } from '../../src/scim-model/schemas.js';
import { applyUserPatch, parsePatchBody } from '../../src/scim-model/user-patch.js';
import { ENTERPRISE, MANAGER, PATCH, scimError, scimErrorAsync, USER, VOLC } from './helpers.js';

beforeAll(() => configureScimmy());

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
