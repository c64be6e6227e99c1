import { beforeAll, describe, expect, it } from 'vitest';
import { configureScimmy } from '../../src/scim-model/schemas.js';
import { applyUserPatch } from '../../src/scim-model/user-patch.js';
import { canonicalUserPath } from '../../src/scim-model/user-paths.js';
import { ENTERPRISE, MANAGER, USER, VOLC } from './helpers.js';

beforeAll(() => configureScimmy());

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
