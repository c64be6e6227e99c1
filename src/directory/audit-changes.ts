import type { AuditChanges, AuditFieldChange } from '../store/audit-types.js';
import type { GroupRecord, JsonObject, UserRecord } from '../store/types.js';
import { upstreamFieldsFor } from './user-mapping.js';

// "What changed" for one audit record, from the state of a resource before and after the operation
// as the operation itself states them: SCIM attribute names only (their values may be personal data
// or secrets); old → new for the fields CloudIdentity holds, and for active/externalId, which decide
// whether the person has an account at all.

/** Never named in a record, even if a client managed to store one as an attribute. */
const SECRET_ATTRIBUTES = new Set(['password']);

/** The parts of a user record a record describes. */
export type UserState = Pick<UserRecord, 'userName' | 'attributes' | 'active' | 'externalId'>;
export type GroupState = Pick<GroupRecord, 'groupName' | 'displayName' | 'externalId' | 'attributes'>;

function changedAttributeNames(before: JsonObject, after: JsonObject): string[] {
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...names]
    .filter((n) => !SECRET_ATTRIBUTES.has(n.toLowerCase()))
    .filter((n) => JSON.stringify(before[n]) !== JSON.stringify(after[n]))
    .sort();
}

function upstreamFields(record: UserState | null): Record<string, string> {
  if (!record) return {};
  try {
    const { UserName, DisplayName, Email, Phone } = upstreamFieldsFor(record.attributes, undefined);
    return { UserName, DisplayName, Email, Phone };
  } catch {
    // A record the mapping refuses now (limits changed): the userName is still worth showing.
    return { UserName: record.userName };
  }
}

function fieldChanges(
  before: Record<string, string | boolean | null>,
  after: Record<string, string | boolean | null>,
): Record<string, AuditFieldChange> | undefined {
  const out: Record<string, AuditFieldChange> = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    // '' and absent are the same to CloudIdentity (an empty Email is no Email).
    const from = before[key] === '' ? null : (before[key] ?? null);
    const to = after[key] === '' ? null : (after[key] ?? null);
    if (from !== to) out[key] = { from, to };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function userFacts(record: UserState | null): Record<string, string | boolean | null> {
  if (!record) return {};
  return { ...upstreamFields(record), active: record.active, externalId: record.externalId };
}

/** A resource's change: null before = created, null after = deleted; `facts` are compared old → new. */
function describe<T extends { attributes: JsonObject }>(
  before: T | null,
  after: T | null,
  facts: (state: T | null) => Record<string, string | boolean | null>,
): AuditChanges {
  const changes: AuditChanges = {};
  if (before === null && after !== null) changes.created = true;
  if (after === null) {
    if (before !== null) changes.deleted = true;
    return changes;
  }
  const names = changedAttributeNames(before?.attributes ?? {}, after.attributes);
  if (names.length > 0) changes.attributes = names;
  const fields = fieldChanges(facts(before), facts(after));
  if (fields) changes.fields = fields;
  return changes;
}

/** A user's change: null before = created, null after = deleted. */
export function describeUser(before: UserState | null, after: UserState | null): AuditChanges {
  return describe(before, after, userFacts);
}

/** A group's change: null before = created, null after = deleted. */
export function describeGroup(before: GroupState | null, after: GroupState | null): AuditChanges {
  return describe(
    before,
    after,
    (g): Record<string, string | null> =>
      g ? { GroupName: g.groupName, DisplayName: g.displayName, externalId: g.externalId } : {},
  );
}
