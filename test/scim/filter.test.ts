import { describe, expect, it } from 'vitest';
import { ScimError } from '../../src/scim/errors.js';
import { equalityAnchor, matchesFilter, parseFilter } from '../../src/scim/filter.js';
import { USER_FILTER_ATTRIBUTES } from '../../src/scim/users-routes.js';

const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const CASE_EXACT = new Set(['id', 'externalid']);
const parse = (f: string) => parseFilter(f, USER_FILTER_ATTRIBUTES);
const matches = (f: string, resource: Record<string, unknown>) =>
  matchesFilter(parse(f), resource, CASE_EXACT);

function expectInvalid(f: string, detail?: RegExp) {
  try {
    parse(f);
  } catch (e) {
    expect(e).toBeInstanceOf(ScimError);
    expect((e as ScimError).status).toBe(400);
    expect((e as ScimError).scimType).toBe('invalidFilter');
    if (detail) expect((e as ScimError).detail).toMatch(detail);
    return;
  }
  throw new Error(`filter '${f}' was accepted`);
}

const alice = {
  id: 'A1',
  externalId: 'Ext-1',
  userName: 'Alice@Example.com',
  active: false,
  title: 'Boss',
  name: { givenName: 'Alice', familyName: 'Liddell' },
  emails: [
    { value: 'alice@work.example', type: 'work', primary: true },
    { value: 'alice@home.example', type: 'home' },
  ],
  [ENTERPRISE]: { department: 'Wonder', manager: { value: 'M1' } },
};

describe('parseFilter', () => {
  it('canonicalises attribute names and strips the core URN prefix', () => {
    expect(parse('USERNAME eq "x"')).toEqual([{ userName: ['eq', 'x'] }]);
    expect(parse('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"')).toEqual([
      { userName: ['eq', 'x'] },
    ]);
  });

  it('nests extension sub-attributes under their schema URN', () => {
    expect(parse(`${ENTERPRISE}:department eq "d"`)).toEqual([{ [ENTERPRISE]: { department: ['eq', 'd'] } }]);
    expect(parse(`${ENTERPRISE.toLowerCase()}:manager.value eq "m" and ${ENTERPRISE}:department pr`)).toEqual(
      [{ [ENTERPRISE]: { manager: { value: ['eq', 'm'] }, department: ['pr'] } }],
    );
  });

  it('returns disjunctive normal form', () => {
    expect(parse('userName eq "a" or externalId eq "b"')).toHaveLength(2);
    expect(parse('(userName eq "a" or userName eq "b") and active eq true')).toHaveLength(2);
  });

  it('lowercases bare literals but leaves quoted strings alone', () => {
    expect(parse('active eq True')).toEqual([{ active: ['eq', true] }]);
    expect(parse('title eq "TRUE"')).toEqual([{ title: ['eq', 'TRUE'] }]);
  });

  it('rejects unknown attributes naming them', () => {
    expectInvalid('shoeSize eq 42', /shoeSize/);
    expectInvalid('urn:example:ext:1.0:User:foo eq "x"', /urn:example/);
  });

  it('rejects unsupported operators, missing values and malformed expressions', () => {
    expectInvalid('userName xx "a"');
    expectInvalid('userName eq');
    expectInvalid('userName eq "a" and');
    expectInvalid('userName eq "a" or');
    expectInvalid('userName eq "a" and not');
    expectInvalid('active gt true');
    expectInvalid('((userName eq "a")');
    expectInvalid('x'.repeat(2001));
  });

  it('a trailing "and" inside a quoted value is fine', () => {
    expect(parse('title eq "this and"')).toEqual([{ title: ['eq', 'this and'] }]);
  });
});

describe('matchesFilter', () => {
  it('userName compares case-insensitively, id and externalId exactly', () => {
    expect(matches('userName eq "alice@example.COM"', alice)).toBe(true);
    expect(matches('externalId eq "ext-1"', alice)).toBe(false);
    expect(matches('externalId eq "Ext-1"', alice)).toBe(true);
    expect(matches('id eq "a1"', alice)).toBe(false);
  });

  it('multi-valued attributes match when any value does; value paths bind to one element', () => {
    expect(matches('emails.value eq "alice@home.example"', alice)).toBe(true);
    expect(matches('emails[type eq "work"].value eq "alice@work.example"', alice)).toBe(true);
    expect(matches('emails[type eq "work"].value eq "alice@home.example"', alice)).toBe(false);
    expect(matches('emails[type eq "work" and value co "@work"]', alice)).toBe(true);
  });

  it('sub-attributes, extensions, booleans, presence and negation', () => {
    expect(matches('name.familyName sw "lid"', alice)).toBe(true);
    expect(matches(`${ENTERPRISE}:department eq "wonder"`, alice)).toBe(true);
    expect(matches(`${ENTERPRISE}:manager.value eq "M1"`, alice)).toBe(true);
    expect(matches(`${ENTERPRISE}:department eq "other"`, alice)).toBe(false);
    expect(matches('active eq false', alice)).toBe(true);
    expect(matches('active eq true', alice)).toBe(false);
    expect(matches('title pr', alice)).toBe(true);
    expect(matches('nickName pr', alice)).toBe(false);
    expect(matches('not (title eq "boss")', alice)).toBe(false);
    expect(matches('title ne "x"', alice)).toBe(true);
    expect(matches('userName ew ".com" and title co "os"', alice)).toBe(true);
    expect(matches('userName eq "nobody" or title eq "boss"', alice)).toBe(true);
  });
});

describe('equalityAnchor', () => {
  it('finds top-level string equality only', () => {
    const [term] = parse('userName eq "a" and title eq "b"');
    expect(equalityAnchor(term, 'userName')).toBe('a');
    expect(equalityAnchor(term, 'externalId')).toBeUndefined();
    expect(equalityAnchor(parse('userName co "a"')[0], 'userName')).toBeUndefined();
    expect(equalityAnchor(parse('not (userName eq "a")')[0], 'userName')).toBeUndefined();
  });
});
