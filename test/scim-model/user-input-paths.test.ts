// The user input layer takes two shortcuts around scimmy's slow paths (see user-input.ts): POST/PUT
// bodies are validated with the schema definition instead of a User instance, and plain-path
// replaces skip scimmy's PatchOp. These properties check that both give exactly what scimmy gives.
import fc from 'fast-check';
import SCIMMY from 'scimmy';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { configureScimmy } from '../../src/scim-model/schemas.js';

/** What parseUserBody last handed to validation (coerceInbound), for the comparison with scimmy. */
const validated: { input: unknown } = { input: undefined };
vi.mock('../../src/scim-model/inbound-coerce.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/scim-model/inbound-coerce.js')>();
  return {
    ...original,
    coerceInbound: (
      definition: Parameters<typeof original.coerceInbound>[0],
      data: Record<string, unknown>,
    ) => {
      validated.input = structuredClone(data);
      return original.coerceInbound(definition, data);
    },
  };
});

import { ScimError } from '../../src/scim-model/scim-error.js';
import { parseUserBody } from '../../src/scim-model/user-input.js';
import { applyUserPatch } from '../../src/scim-model/user-patch.js';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const VOLC = 'urn:volcengine:params:scim:schemas:extension:cloudidentity:2.0:User';

beforeAll(() => configureScimmy());

/** Outcome as a comparable value: the result with keys sorted, or the error's status and type. */
async function outcome(run: () => unknown): Promise<unknown> {
  try {
    return sortKeys(await run());
  } catch (e) {
    if (e instanceof ScimError) return { status: e.status, scimType: e.scimType ?? null };
    throw e;
  }
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
  );
}

// Paths Entra and Okta send, plain and otherwise, in various spellings, plus ones that must fail.
const PATHS = [
  'displayName',
  'DisplayName',
  'title',
  'nickName',
  'userType',
  'preferredLanguage',
  'locale',
  'timezone',
  'profileUrl',
  'active',
  'userName',
  'name.familyName',
  'name.givenName',
  'Name.Formatted',
  'name',
  `${USER}:displayName`,
  `${ENTERPRISE}:department`,
  `${ENTERPRISE}:employeeNumber`,
  `${ENTERPRISE}:costCenter`,
  `${ENTERPRISE}:manager`,
  `${ENTERPRISE}:manager.value`,
  `${ENTERPRISE}:manager.displayName`,
  `${VOLC}:description`,
  'emails[type eq "work"].value',
  'phoneNumbers[type eq "mobile"].value',
  'addresses[type eq "work"].locality',
  'emails',
  'id',
  'meta.created',
  'groups',
  'password',
  'x509Certificates',
  'noSuchAttribute',
  'name.noSuchPart',
  'urn:example:unknown:attr',
];

const values = fc.oneof(
  fc.constantFrom('Ada', 'ada@example.com', '', 'True', 'false', 'Finance & Ops', 'https://example.com/ada'),
  fc.string({ maxLength: 12 }),
  fc.boolean(),
  fc.integer(),
  fc.constant(null),
  fc.constant({ value: 'mgr-1' }),
  fc.constant([{ value: 'x@example.com', type: 'work' }]),
);

const operation = fc.record(
  {
    op: fc.constantFrom('replace', 'Replace', 'add', 'Add', 'remove'),
    path: fc.constantFrom(...PATHS),
    value: values,
  },
  { requiredKeys: ['op', 'path'] },
);

const currents = fc.constantFrom<Record<string, unknown>>(
  {
    schemas: [USER],
    id: 'u-1',
    userName: 'ada@example.com',
    active: true,
    meta: { resourceType: 'User', location: 'https://h/scim/v2/Users/u-1', version: 'W/"3"' },
  },
  {
    schemas: [USER, ENTERPRISE, VOLC],
    id: 'u-2',
    externalId: 'ext-2',
    userName: 'grace@example.com',
    displayName: 'Grace Hopper',
    name: { givenName: 'Grace', familyName: 'Hopper', formatted: 'Grace Hopper' },
    title: 'Rear Admiral',
    active: false,
    emails: [{ value: 'grace@example.com', type: 'work', primary: true }],
    phoneNumbers: [{ value: '+1 202 555 0100', type: 'mobile' }],
    groups: [{ value: 'g-1', display: 'Navy', type: 'direct' }],
    [ENTERPRISE]: { department: 'R&D', manager: { value: 'u-1', displayName: 'Ada' } },
    [VOLC]: { description: 'admiral' },
    meta: { resourceType: 'User', created: '2026-01-01T00:00:00.000Z', version: 'W/"7"' },
  },
);

describe('plain-path PATCH without PatchOp', () => {
  // 1500 runs through scimmy's PatchOp take about 25 s on a loaded 2-CPU machine, close to the
  // default 30 s test timeout: a generous one, so that load alone does not fail the property.
  it('gives what scimmy PatchOp gives, for any operations', async () => {
    await fc.assert(
      fc.asyncProperty(
        currents,
        fc.array(operation, { minLength: 1, maxLength: 4 }),
        async (current, ops) => {
          const fast = await outcome(() => applyUserPatch(structuredClone(ops), structuredClone(current)));
          const reference = await outcome(() =>
            applyUserPatch(structuredClone(ops), structuredClone(current), { plainFastPath: false }),
          );
          expect(fast).toEqual(reference);
        },
      ),
      { numRuns: 1500 },
    );
  }, 120_000);

  it("applies Entra's Replace of displayName, name.familyName and a string active", async () => {
    const current = {
      schemas: [USER],
      id: 'u-1',
      userName: 'ada@example.com',
      name: { givenName: 'Ada' },
      active: true,
    };
    const input = await applyUserPatch(
      [
        { op: 'Replace', path: 'displayName', value: 'Ada L' },
        { op: 'Replace', path: 'name.familyName', value: 'Lovelace' },
        { op: 'Replace', path: 'active', value: 'False' },
        { op: 'Replace', path: `${ENTERPRISE}:department`, value: 'R&D' },
      ],
      current,
    );
    expect(input.active).toBe(false);
    expect(input.attributes).toMatchObject({
      userName: 'ada@example.com',
      displayName: 'Ada L',
      name: { givenName: 'Ada', familyName: 'Lovelace' },
      [ENTERPRISE]: { department: 'R&D' },
    });
  });
});

describe('POST/PUT bodies without a User instance', () => {
  const attribute = fc.constantFrom(
    'userName',
    'UserName',
    'displayName',
    'title',
    'active',
    'emails',
    'name',
    'phoneNumbers',
    'roles',
    'externalId',
    'id',
    'meta',
    'groups',
    'password',
    'bogus',
    ENTERPRISE,
    `${ENTERPRISE}:department`,
    `${ENTERPRISE}:manager`,
  );
  const body = fc
    .dictionary(
      attribute,
      fc.oneof(
        values,
        fc.constant({ givenName: 'Ada', familyName: 'Lovelace' }),
        fc.constant({ department: 'R&D', bogus: 1 }),
        fc.constant({}),
        fc.constant({ bogus: 1 }),
        fc.constant([{ value: 'admin', primary: true }]),
      ),
      { maxKeys: 6 },
    )
    .map((attributes) => ({ schemas: [USER], userName: 'ada@example.com', ...attributes }));

  it('validates exactly as new SCIMMY.Schemas.User(body, "in") does, for accepted and refused bodies alike', async () => {
    await fc.assert(
      fc.property(body, (raw) => {
        const { coerceInput, ours } = parseCapturingCoerceInput(raw);
        // Inputs refused before validation never reach scimmy: nothing to compare.
        fc.pre(coerceInput !== undefined);
        let reference: unknown;
        try {
          const instance = new SCIMMY.Schemas.User(coerceInput as Record<string, unknown>, 'in');
          reference = attributesOf({ ...(instance as unknown as object) });
        } catch {
          reference = 'refused';
        }
        expect(ours).toEqual(reference);
      }),
      { numRuns: 1500 },
    );
  });
});

/**
 * parseUserBody's outcome (its attributes, or 'refused'), and what it handed to scimmy's
 * validation (undefined when it refused the body before that).
 */
function parseCapturingCoerceInput(raw: Record<string, unknown>): { coerceInput: unknown; ours: unknown } {
  validated.input = undefined;
  try {
    const ours = sortKeys(JSON.parse(JSON.stringify(parseUserBody(structuredClone(raw)).attributes)));
    return { coerceInput: validated.input, ours };
  } catch (e) {
    if (!(e instanceof ScimError)) throw e;
    return { coerceInput: validated.input, ours: 'refused' };
  }
}

/** The attributes parseUserBody keeps from a validated user. */
function attributesOf(coerced: Record<string, unknown>): unknown {
  const {
    schemas: _s,
    meta: _m,
    id: _i,
    password: _p,
    groups: _g,
    externalId: _e,
    active: _a,
    ...rest
  } = coerced;
  return sortKeys(JSON.parse(JSON.stringify(rest)));
}
