// coerceInbound stands in for scimmy's SchemaDefinition#coerce(body, 'in') on every POST/PUT and
// patched user: it must accept exactly what scimmy accepts, refuse with scimmy's own error, and give
// the same result as JSON, key order included.
import fc from 'fast-check';
import SCIMMY from 'scimmy';
import { beforeAll, describe, expect, it } from 'vitest';
import { coerceInbound } from '../../src/scim-model/inbound-coerce.js';
import { configureScimmy } from '../../src/scim-model/schemas.js';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

beforeAll(() => configureScimmy());

type Json = Record<string, unknown>;
const definition = () => SCIMMY.Schemas.User.definition;

/** JSON text of the result (order kept), or the error's class and message. */
function outcome(run: () => unknown): string {
  try {
    return JSON.stringify(run());
  } catch (e) {
    return `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
}

const scalar = fc.oneof(
  fc.constantFrom('Ada', 'ada@example.com', '', 'work', 'Work', 'https://example.com/a', 'urn:x:y'),
  fc.string({ maxLength: 6 }),
  fc.boolean(),
  fc.integer(),
  fc.constant(null),
);
const subKey = fc.constantFrom(
  'value',
  'Value',
  'type',
  'primary',
  'display',
  '$ref',
  'givenName',
  'GIVENNAME',
  'familyName',
  'formatted',
  'bogus',
  'displayName',
);
const complex = fc.dictionary(subKey, scalar, { maxKeys: 5 });
const value = fc.oneof(
  scalar,
  complex,
  fc.array(complex, { maxLength: 3 }),
  fc.array(scalar, { maxLength: 2 }),
  fc.constant({ value: 'mgr-1' }),
  fc.constant([{ value: 'x@example.com', type: 'work', primary: true }]),
);
const extension = fc.dictionary(
  fc.constantFrom('department', 'Department', 'manager', 'Manager', 'employeeNumber', 'costCenter', 'bogus'),
  value,
  { maxKeys: 4 },
);
const topKey = fc.constantFrom(
  'userName',
  'UserName',
  'displayName',
  'nickName',
  'title',
  'active',
  'emails',
  'name',
  'phoneNumbers',
  'addresses',
  'roles',
  'entitlements',
  'photos',
  'x509Certificates',
  'profileUrl',
  'externalId',
  'id',
  'meta',
  'groups',
  'password',
  'bogus',
  `${ENTERPRISE}:department`,
);
const body = fc
  .tuple(
    fc.dictionary(topKey, value, { maxKeys: 7 }),
    fc.option(fc.oneof(extension, scalar), { nil: undefined }),
    fc.constantFrom<unknown>(undefined, [USER], [USER, ENTERPRISE], 'x', [1]),
  )
  .map(([attributes, ext, schemas]) => {
    const out: Json = { userName: 'ada@example.com', ...attributes };
    if (schemas !== undefined) out.schemas = schemas;
    if (ext !== undefined) out[ENTERPRISE] = ext;
    return out;
  });

// Bodies of the shape clients send (mostly valid), in any letter case and sub-attribute order.
const text = fc.oneof(fc.constantFrom('Ada', 'work', 'Work', 'home', 'R&D'), fc.string({ maxLength: 8 }));
const cased = (name: string) => fc.constantFrom(name, name.toLowerCase(), name.toUpperCase());
const entry = (subs: Record<string, fc.Arbitrary<unknown>>) =>
  fc
    .tuple(...Object.entries(subs).map(([k, v]) => fc.option(fc.tuple(cased(k), v), { nil: undefined })))
    .chain((pairs) => fc.shuffledSubarray(pairs.filter((p) => p !== undefined) as [string, unknown][]))
    .map((pairs) => Object.fromEntries(pairs));
const multi = entry({ value: text, type: text, primary: fc.boolean(), display: text, bogus: text });
const plausible = fc
  .record(
    {
      userName: text,
      displayName: text,
      active: fc.boolean(),
      title: fc.option(text),
      emails: fc.array(multi, { maxLength: 3 }),
      phoneNumbers: fc.array(multi, { maxLength: 2 }),
      roles: fc.array(multi, { maxLength: 2 }),
      name: entry({
        formatted: text,
        familyName: text,
        givenName: text,
        middleName: fc.option(text),
        bogus: text,
      }),
      addresses: fc.array(entry({ streetAddress: text, locality: text, type: text, primary: fc.boolean() }), {
        maxLength: 2,
      }),
      externalId: text,
      meta: fc.constantFrom({ resourceType: 'User' }, {}, { created: '2020-01-01T00:00:00Z' }),
      [ENTERPRISE]: entry({
        department: text,
        employeeNumber: text,
        manager: fc.oneof(entry({ value: text, displayName: text }), fc.constant(null)),
        organization: text,
      }),
    },
    { requiredKeys: ['userName'] },
  )
  .map((b) => ({ schemas: [USER, ENTERPRISE], ...b }));

describe('coerceInbound', () => {
  it("gives scimmy's coerce result as JSON for the bodies clients send", () => {
    fc.assert(
      fc.property(plausible, (raw) => {
        const reference = outcome(() => definition().coerce(structuredClone(raw), 'in'));
        const ours = outcome(() => coerceInbound(definition() as never, structuredClone(raw)));
        expect(ours).toEqual(reference);
      }),
      { numRuns: 3000 },
    );
  });

  it("gives scimmy's coerce result as JSON, or its error, for any body", () => {
    fc.assert(
      fc.property(body, (raw) => {
        const reference = outcome(() => definition().coerce(structuredClone(raw), 'in'));
        const ours = outcome(() => coerceInbound(definition() as never, structuredClone(raw)));
        expect(ours).toEqual(reference);
      }),
      { numRuns: 3000 },
    );
  });

  it('builds plain objects for an Entra create', () => {
    const raw = {
      schemas: [USER, ENTERPRISE],
      externalId: 'e-1',
      userName: 'ada@example.com',
      active: true,
      displayName: 'Ada',
      emails: [{ primary: true, type: 'work', value: 'ada@example.com' }],
      meta: { resourceType: 'User' },
      name: { formatted: 'Ada L', familyName: 'L', givenName: 'Ada' },
      [ENTERPRISE]: { department: 'R&D', manager: { value: 'm-1' } },
    };
    const coerced = coerceInbound(definition() as never, raw);
    expect(JSON.stringify(coerced)).toBe(JSON.stringify(definition().coerce(structuredClone(raw), 'in')));
    const name = coerced.name as Json;
    expect(Object.getPrototypeOf(name)).toBe(Object.prototype);
    expect(Object.getOwnPropertyNames(name)).toEqual(['formatted', 'familyName', 'givenName']);
    expect(Object.isFrozen(name)).toBe(false);
  });
});
