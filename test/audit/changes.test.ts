// "What changed" in an audit record: attribute names only, old → new for the facts that decide
// what CloudIdentity holds and whether the person has an account.
import { describe, expect, it } from 'vitest';
import { describeGroup, describeUser, type GroupState, type UserState } from '../../src/audit/changes.js';

const alice: UserState = {
  userName: 'alice@example.com',
  active: true,
  externalId: 'ext-1',
  attributes: {
    userName: 'alice@example.com',
    displayName: 'Alice',
    emails: [{ value: 'alice@example.com', type: 'work' }],
    title: 'Engineer',
  },
};

describe('describeUser', () => {
  it('a create names every attribute and the facts from nothing to their values', () => {
    expect(describeUser(null, alice)).toEqual({
      created: true,
      attributes: ['displayName', 'emails', 'title', 'userName'],
      fields: {
        UserName: { from: null, to: 'alice@example.com' },
        DisplayName: { from: null, to: 'Alice' },
        Email: { from: null, to: 'alice@example.com' },
        active: { from: null, to: true },
        externalId: { from: null, to: 'ext-1' },
      },
    });
  });

  it('a delete says deleted and nothing else', () => {
    expect(describeUser(alice, null)).toEqual({ deleted: true });
    expect(describeUser(null, null)).toEqual({});
  });

  it('a change names the attributes that changed, and old → new only for the mapped facts', () => {
    const after: UserState = {
      ...alice,
      active: false,
      attributes: { ...alice.attributes, title: 'Manager', displayName: 'Alice L' },
    };
    expect(describeUser(alice, after)).toEqual({
      attributes: ['displayName', 'title'],
      fields: {
        DisplayName: { from: 'Alice', to: 'Alice L' },
        active: { from: true, to: false },
      },
    });
  });

  it('values of other attributes never appear (they may be personal data)', () => {
    const after: UserState = { ...alice, attributes: { ...alice.attributes, title: 'Secret Project Lead' } };
    const text = JSON.stringify(describeUser(alice, after));
    expect(text).not.toContain('Secret Project Lead');
    expect(text).not.toContain('Engineer');
  });

  it('a password is never named, even as a changed attribute', () => {
    const before: UserState = { ...alice, attributes: { ...alice.attributes, password: 'one' } };
    const after: UserState = { ...alice, attributes: { ...alice.attributes, Password: 'two' } };
    const changes = describeUser(before, after);
    expect(changes).toEqual({});
    expect(JSON.stringify(describeUser(null, after))).not.toMatch(/password|two/i);
  });

  it('an empty value and no value are the same (CloudIdentity has no empty Email)', () => {
    const before: UserState = { ...alice, externalId: null, attributes: { userName: 'alice@example.com' } };
    const after: UserState = { ...before, attributes: { userName: 'alice@example.com', emails: [] } };
    expect(describeUser(before, after)).toEqual({ attributes: ['emails'] });
  });

  it('a record the mapping refuses now still shows its userName', () => {
    const refused: UserState = { ...alice, attributes: { userName: 'x'.repeat(500) } };
    expect(describeUser(null, refused).fields).toMatchObject({
      UserName: { from: null, to: 'alice@example.com' },
    });
  });
});

describe('describeGroup', () => {
  const team: GroupState = { groupName: 'team', displayName: 'Team', externalId: null, attributes: {} };

  it('create, rename, externalId and delete', () => {
    expect(describeGroup(null, team)).toEqual({
      created: true,
      fields: { GroupName: { from: null, to: 'team' }, DisplayName: { from: null, to: 'Team' } },
    });
    expect(describeGroup(team, { ...team, displayName: 'Team B', externalId: 'e-9' })).toEqual({
      fields: { DisplayName: { from: 'Team', to: 'Team B' }, externalId: { from: null, to: 'e-9' } },
    });
    expect(describeGroup(team, { ...team })).toEqual({});
    expect(describeGroup(team, null)).toEqual({ deleted: true });
  });
});
