import { describe, expect, it } from 'vitest';
import { createUserInput, scimUser } from '../../bench/floor/mapping.js';

describe('the bare proxy mapping', () => {
  it('maps an Entra-shaped create to CreateUser fields', () => {
    expect(
      createUserInput({
        userName: 'ann@example.com',
        displayName: 'Ann',
        name: { formatted: 'Ann Example' },
        emails: [
          { value: 'home@example.com', type: 'home' },
          { value: 'ann@example.com', type: 'work', primary: true },
        ],
      }),
    ).toEqual({ UserName: 'ann@example.com', DisplayName: 'Ann', Email: 'ann@example.com' });
    expect(
      createUserInput({ userName: 'bo', name: { formatted: 'Bo B' }, phoneNumbers: [{ value: '+1' }] }),
    ).toEqual({ UserName: 'bo', DisplayName: 'Bo B', Phone: '+1' });
  });

  it('refuses what it cannot map', () => {
    expect(createUserInput([])).toMatch(/JSON object/);
    expect(createUserInput({ displayName: 'x' })).toMatch(/userName/);
  });

  it('shows a CloudIdentity user as a SCIM User whose id is the UserId', () => {
    const user = scimUser(
      {
        UserId: 'u1',
        UserName: 'ann',
        DisplayName: 'Ann',
        Email: 'ann@example.com',
        CreatedTime: '2026-01-01T08:00:00+08:00',
        UpdatedTime: '2026-01-01T08:00:00+08:00',
      },
      'http://h',
    );
    expect(user).toMatchObject({
      id: 'u1',
      userName: 'ann',
      displayName: 'Ann',
      emails: [{ value: 'ann@example.com', primary: true }],
      active: true,
      meta: { resourceType: 'User', location: 'http://h/scim/v2/Users/u1' },
    });
    expect(user).not.toHaveProperty('phoneNumbers');
  });

  it("shows it under the durable floor's own SCIM id when given one", () => {
    const user = scimUser(
      { UserId: 'u1', UserName: 'ann', CreatedTime: 't', UpdatedTime: 't' },
      'http://h',
      'scim-1',
    );
    expect(user).toMatchObject({ id: 'scim-1', meta: { location: 'http://h/scim/v2/Users/scim-1' } });
  });
});
