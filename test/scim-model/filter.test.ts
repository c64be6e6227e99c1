import { describe, expect, it } from 'vitest';
import { USER_FILTER_ATTRIBUTES } from '../../src/scim-http/users-routes.js';
import { equalityAnchor, matchesFilter, parseFilter } from '../../src/scim-model/filter.js';
import { ScimError } from '../../src/scim-model/scim-error.js';

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

describe('complexity budget (issue 11, finding 8)', () => {
  const pair = '(title eq "0" or nickName eq "0")';
  const repeatedUpTo = (first: string, joiner: string, limit = 2000) => {
    let f = first;
    while ((f + joiner + first).length <= limit) f += joiner + first;
    return f;
  };

  it('a filter whose DNF would explode is refused before it is expanded', () => {
    const f = repeatedUpTo(pair, ' and ');
    expect(f.length).toBeGreaterThan(1900);
    expectInvalid(f, /^filter is too complex: it expands to more than 100 alternatives/);
    // 2^6 = 64 terms is within the budget and expanded; 2^7 = 128 is not.
    expect(parse(Array(6).fill(pair).join(' and '))).toHaveLength(64);
    expectInvalid(Array(7).fill(pair).join(' and '), /too complex/);
  });

  it('deep nesting is refused by a depth limit, never by the stack', () => {
    expect(parse(`${'('.repeat(15)}title eq "x"${')'.repeat(15)}`)).toEqual([{ title: ['eq', 'x'] }]);
    for (const f of [
      `${'('.repeat(900)}title eq "x"${')'.repeat(900)}`,
      `${'not ('.repeat(300)}title eq "x"${')'.repeat(300)}`,
      '('.repeat(2000),
      `emails[${'type eq "a" and ('.repeat(100)}`,
    ]) {
      expectInvalid(f, /^filter is too complex: .*nest deeper than 16 levels/);
    }
  });

  it('long OR chains: within the budget they plan, past it they are refused', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => `id eq "${i}"`).join(' or ');
    expect(parse(hundred)).toHaveLength(100);
    expectInvalid(`${hundred} or id eq "x"`, /too complex/);
    const longAnd = repeatedUpTo('title eq "0"', ' and ');
    expect(parse(longAnd)).toHaveLength(1);
  });

  it('no detail ever reports a JavaScript runtime error', () => {
    for (const f of [
      repeatedUpTo(pair, ' and '),
      '('.repeat(2000),
      ')'.repeat(2000),
      '['.repeat(2000),
      '"'.repeat(1999),
    ]) {
      try {
        parse(f);
      } catch (e) {
        expect((e as ScimError).detail).not.toMatch(/call stack|TypeError|undefined/i);
      }
    }
  });
});

describe('parser details', () => {
  it('value paths distribute OR over elements and bind AND to one element', () => {
    expect(parse('emails[type eq "work" or type eq "home"]')).toEqual([
      { emails: { type: ['eq', 'work'] } },
      { emails: { type: ['eq', 'home'] } },
    ]);
    expect(parse('emails[type eq "work"].value eq "x"')).toEqual([
      { emails: { type: ['eq', 'work'], value: ['eq', 'x'] } },
    ]);
  });

  it('not is pushed down to the comparisons (De Morgan)', () => {
    expect(parse('not (title eq "a" or title eq "b")')).toEqual([
      {
        title: [
          ['not', 'eq', 'a'],
          ['not', 'eq', 'b'],
        ],
      },
    ]);
    expect(parse('not (title eq "a" and nickName eq "b")')).toEqual([
      { title: ['not', 'eq', 'a'] },
      { nickName: ['not', 'eq', 'b'] },
    ]);
    expect(matches('not (title eq "boss" and userName eq "x")', alice)).toBe(true);
    expectInvalid('not (emails[type eq "work"])', /not supported/);
  });

  it('strings are JSON strings; numbers, booleans and null are literals; other bare words are strings', () => {
    expect(parse('title eq "a\\"b and c"')).toEqual([{ title: ['eq', 'a"b and c'] }]);
    expect(parse('title eq "caf\\u00e9"')).toEqual([{ title: ['eq', 'café'] }]);
    expect(parse('title eq 1.5e2')).toEqual([{ title: ['eq', 150] }]);
    expect(parse('title eq NULL')).toEqual([{ title: ['eq', null] }]);
    expect(parse('externalId eq 12345-ab')).toEqual([{ externalId: ['eq', '12345-ab'] }]);
    expectInvalid('title eq "unterminated', /not closed/);
    expectInvalid('title eq "x" title eq "y"', /unexpected/);
    expectInvalid('title eq "x" && nickName pr', /unexpected character/);
  });

  it('userName values are normalised to NFC when asked', () => {
    const nfd = 'jose\u0301';
    expect(parseFilter(`userName eq "${nfd}"`, USER_FILTER_ATTRIBUTES, { nfc: ['userName'] })).toEqual([
      { userName: ['eq', 'jos\u00e9'] },
    ]);
    expect(parse(`title eq "${nfd}"`)).toEqual([{ title: ['eq', nfd] }]);
  });
});
