import { describe, expect, it } from 'vitest';
import { InvalidValueError } from '../../src/directory/errors.js';
import { etagMatches } from '../../src/directory/shared.js';
import {
  changedFields,
  derivedDisplayName,
  toScimUser,
  toUtc,
  type UserView,
  upstreamFieldsFor,
  userVersion,
} from '../../src/directory/user-mapping.js';
import { type ScimError, toScimError } from '../../src/scim/errors.js';
import type { UserRecord } from '../../src/store/types.js';
import type { CloudIdentityUser } from '../../src/volcengine/types.js';

const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const VOLC = 'urn:volcengine:params:scim:schemas:extension:cloudidentity:2.0:User';

function limitError(fn: () => unknown): ScimError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidValueError);
    const answer = toScimError(e);
    expect(answer.status).toBe(400);
    expect(answer.scimType).toBe('invalidValue');
    return answer;
  }
  throw new Error('accepted');
}

describe('upstreamFieldsFor', () => {
  it('maps the five CloudIdentity fields', () => {
    expect(
      upstreamFieldsFor(
        {
          userName: 'alice',
          displayName: 'Alice L',
          emails: [
            { value: 'home@x', type: 'home' },
            { value: 'work@x', type: 'work' },
          ],
          phoneNumbers: [
            { value: '111', type: 'home' },
            { value: '222', type: 'mobile' },
          ],
        },
        'desc',
      ),
    ).toEqual({
      UserName: 'alice',
      DisplayName: 'Alice L',
      Email: 'work@x',
      Phone: '222',
      Description: 'desc',
    });
  });

  it('primary wins over type; else work; else the first', () => {
    const emails = [
      { value: 'a@x', type: 'home' },
      { value: 'b@x', type: 'work' },
      { value: 'c@x', type: 'other', primary: true },
    ];
    expect(upstreamFieldsFor({ userName: 'u', emails }, undefined).Email).toBe('c@x');
    expect(upstreamFieldsFor({ userName: 'u', emails: emails.slice(0, 2) }, undefined).Email).toBe('b@x');
    expect(upstreamFieldsFor({ userName: 'u', emails: emails.slice(0, 1) }, undefined).Email).toBe('a@x');
    expect(upstreamFieldsFor({ userName: 'u' }, undefined)).toMatchObject({
      Email: '',
      Phone: '',
      Description: '',
    });
  });

  it('derives the display name: displayName, name.formatted, given family, userName', () => {
    expect(derivedDisplayName({ userName: 'u', name: { formatted: 'F', givenName: 'G' } })).toEqual({
      value: 'F',
      explicit: false,
    });
    expect(derivedDisplayName({ userName: 'u', name: { givenName: 'G', familyName: 'H' } }).value).toBe(
      'G H',
    );
    expect(derivedDisplayName({ userName: 'u' }).value).toBe('u');
    // a derived name over the limit is shortened, not refused
    const long = upstreamFieldsFor({ userName: 'u', name: { formatted: 'n'.repeat(100) } }, undefined);
    expect([...long.DisplayName]).toHaveLength(64);
  });

  it('refuses values over the limits, naming attribute and limit; counts characters, not bytes', () => {
    expect(limitError(() => upstreamFieldsFor({ userName: 'u'.repeat(55) }, undefined)).detail).toMatch(
      /userName.*54/,
    );
    expect(
      limitError(() => upstreamFieldsFor({ userName: 'u', displayName: 'd'.repeat(65) }, undefined)).detail,
    ).toMatch(/displayName.*64/);
    expect(
      limitError(() => upstreamFieldsFor({ userName: 'u', emails: [{ value: 'e'.repeat(129) }] }, undefined))
        .detail,
    ).toMatch(/emails.*128/);
    expect(
      limitError(() =>
        upstreamFieldsFor({ userName: 'u', phoneNumbers: [{ value: '1'.repeat(21) }] }, undefined),
      ).detail,
    ).toMatch(/phoneNumbers.*20/);
    expect(limitError(() => upstreamFieldsFor({ userName: 'u' }, 'x'.repeat(256))).detail).toMatch(
      /description.*255/,
    );
    expect(limitError(() => upstreamFieldsFor({ userName: '' }, undefined)).detail).toMatch(/userName/);
    expect(upstreamFieldsFor({ userName: '用'.repeat(54) }, undefined).UserName).toHaveLength(54);
    expect(upstreamFieldsFor({ userName: '😀'.repeat(54) }, undefined).UserName).toBe('😀'.repeat(54));
  });
});

describe('changedFields', () => {
  it('lists only differences; an absent live field equals ""', () => {
    const live = {
      UserId: 'U',
      UserName: 'a',
      DisplayName: 'A',
      CreatedTime: '',
      UpdatedTime: '',
    } as CloudIdentityUser;
    expect(
      changedFields(live, { UserName: 'a', DisplayName: 'A', Email: '', Phone: '', Description: '' }),
    ).toEqual({});
    expect(
      changedFields(live, { UserName: 'b', DisplayName: 'A', Email: 'e', Phone: '', Description: '' }),
    ).toEqual({
      UserName: 'b',
      Email: 'e',
    });
  });
});

describe('toUtc', () => {
  it('converts CloudIdentity timestamps to RFC 3339 UTC', () => {
    expect(toUtc('2024-07-22T21:53:54+08:00')).toBe('2024-07-22T13:53:54.000Z');
    expect(toUtc(undefined)).toBeUndefined();
    expect(toUtc('garbage')).toBeUndefined();
  });
});

const record = (over: Partial<UserRecord> = {}): UserRecord => ({
  scimId: 'scim-1',
  upstreamUserId: 'U1',
  userName: 'alice',
  externalId: 'ext',
  active: true,
  state: 'ready',
  attributes: {
    userName: 'alice',
    name: { givenName: 'Alice' },
    emails: [{ value: 'old@x', type: 'work', primary: true }],
    [ENTERPRISE]: { department: 'D' },
    [VOLC]: { description: 'stored' },
  },
  tombstoneGroupIds: [],
  version: 3,
  createdAt: '2024-01-01T00:00:00.000Z',
  updatedAt: '2024-01-02T00:00:00.000Z',
  ...over,
});
const upstream: CloudIdentityUser = {
  UserId: 'U1',
  UserName: 'Alice',
  DisplayName: 'Alice Upstream',
  Email: 'new@x',
  Description: 'from console',
  Source: 'Manual',
  IdentityType: 'Create',
  CreatedTime: '2024-01-01T08:00:00+08:00',
  UpdatedTime: '2024-01-03T08:00:00+08:00',
};

describe('toScimUser and userVersion', () => {
  it('merges the store record with CloudIdentity, CloudIdentity winning for its fields', () => {
    const view: UserView = { scimId: 'scim-1', record: record(), upstream };
    const out = toScimUser(view, 'https://h/scim/v2/Users/scim-1');
    expect(out).toMatchObject({
      id: 'scim-1',
      externalId: 'ext',
      userName: 'Alice',
      displayName: 'Alice Upstream',
      emails: [{ value: 'new@x', type: 'work', primary: true }],
      active: true,
      name: { givenName: 'Alice' },
      [VOLC]: { description: 'from console', source: 'Manual', identityType: 'Create' },
      meta: {
        resourceType: 'User',
        created: '2024-01-01T00:00:00.000Z',
        lastModified: '2024-01-03T00:00:00.000Z',
        location: 'https://h/scim/v2/Users/scim-1',
        version: 'W/"3"',
      },
    });
    expect(out.schemas).toEqual(['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE, VOLC]);
  });

  it('a tombstone (no upstream) answers from the store with active false', () => {
    const out = toScimUser(
      { scimId: 'scim-1', record: record({ active: false, upstreamUserId: null }), upstream: null },
      'l',
    );
    expect(out).toMatchObject({ userName: 'alice', active: false, emails: [{ value: 'old@x' }] });
    expect(out[VOLC]).toEqual({ description: 'stored' });
  });

  it('a foreign user (no record) has only what CloudIdentity holds', () => {
    const out = toScimUser({ scimId: 'U1', record: null, upstream }, 'l');
    expect(Object.keys(out).sort()).toEqual(
      ['active', 'displayName', 'emails', 'id', 'meta', 'schemas', 'userName', VOLC].sort(),
    );
    expect(out.emails).toEqual([{ value: 'new@x', type: 'work', primary: true }]);
    expect((out.meta as Record<string, string>).version).toBe(
      userVersion({ scimId: 'U1', record: null, upstream }),
    );
    expect(userVersion({ scimId: 'U1', record: null, upstream })).toMatch(/^W\/"u\d+"$/);
  });
});

describe('etagMatches', () => {
  it('compares weak and strong forms, lists and *', () => {
    expect(etagMatches('W/"3"', 'W/"3"')).toBe(true);
    expect(etagMatches('"3"', 'W/"3"')).toBe(true);
    expect(etagMatches('W/"2", W/"3"', 'W/"3"')).toBe(true);
    expect(etagMatches('*', 'W/"3"')).toBe(true);
    expect(etagMatches('W/"2"', 'W/"3"')).toBe(false);
  });
});
