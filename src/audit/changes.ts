import { upstreamFieldsFor } from '../directory/user-mapping.js';
import type { AuditChanges, AuditFieldChange } from '../store/audit-types.js';
import type { GroupRecord, JsonObject, UserRecord } from '../store/types.js';
import type { StoreCapture } from './capture.js';

// "What changed" for one audit record, from the store capture of the request: SCIM attribute
// names only (their values may be personal data or secrets); old → new for the fields CloudIdentity
// holds, and for active/externalId, which decide whether the person has an account at all.

/** Never named in a record, even if a client managed to store one as an attribute. */
const SECRET_ATTRIBUTES = new Set(['password']);

function changedAttributeNames(before: JsonObject, after: JsonObject): string[] {
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...names]
    .filter((n) => !SECRET_ATTRIBUTES.has(n.toLowerCase()))
    .filter((n) => JSON.stringify(before[n]) !== JSON.stringify(after[n]))
    .sort();
}

function upstreamFields(record: UserRecord | null): Record<string, string> {
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

function userFacts(record: UserRecord | null): Record<string, string | boolean | null> {
  if (!record) return {};
  return { ...upstreamFields(record), active: record.active, externalId: record.externalId };
}

export interface Described {
  name: string | null;
  changes: AuditChanges;
}

function membersOf(capture: StoreCapture, keep: (group: string, user: string) => boolean) {
  const added: string[] = [];
  const removed: string[] = [];
  for (const [group, user, change] of capture.memberships) {
    if (!keep(group, user)) continue;
    (change === 'add' ? added : removed).push(user);
  }
  return added.length + removed.length > 0 ? { added, removed } : undefined;
}

export function describeUser(capture: StoreCapture, scimId: string): Described {
  const before = capture.usersBefore.get(scimId) ?? null;
  const afterRaw = capture.usersAfter.get(scimId);
  const after = afterRaw === 'deleted' ? null : (afterRaw ?? before);
  const changes: AuditChanges = {};
  if (afterRaw === 'deleted') changes.deleted = true;
  if (capture.usersBefore.get(scimId) === null && afterRaw && afterRaw !== 'deleted') changes.created = true;
  if (afterRaw && afterRaw !== 'deleted') {
    const names = changedAttributeNames(before?.attributes ?? {}, afterRaw.attributes);
    if (names.length > 0) changes.attributes = names;
    const fields = fieldChanges(userFacts(before), userFacts(afterRaw));
    if (fields) changes.fields = fields;
  }
  // Groups the user joined or left through this request (reactivation restores them).
  const groups = membersOf(capture, (_g, u) => u === scimId);
  if (groups) {
    const byGroup = (change: 'add' | 'remove') =>
      capture.memberships.filter(([, u, c]) => u === scimId && c === change).map(([g]) => g);
    changes.groups = { added: byGroup('add'), removed: byGroup('remove') };
  }
  return { name: after?.userName ?? before?.userName ?? null, changes };
}

export function describeGroup(capture: StoreCapture, scimId: string): Described {
  const before: GroupRecord | null = capture.groupsBefore.get(scimId) ?? null;
  const afterRaw = capture.groupsAfter.get(scimId);
  const after = afterRaw === 'deleted' ? null : (afterRaw ?? before);
  const changes: AuditChanges = {};
  if (afterRaw === 'deleted') changes.deleted = true;
  if (capture.groupsBefore.get(scimId) === null && afterRaw && afterRaw !== 'deleted') changes.created = true;
  if (afterRaw && afterRaw !== 'deleted') {
    const names = changedAttributeNames(before?.attributes ?? {}, afterRaw.attributes);
    if (names.length > 0) changes.attributes = names;
    const facts = (g: GroupRecord | null): Record<string, string | null> =>
      g ? { GroupName: g.groupName, DisplayName: g.displayName, externalId: g.externalId } : {};
    const fields = fieldChanges(facts(before), facts(afterRaw));
    if (fields) changes.fields = fields;
  }
  const members = membersOf(capture, (g) => g === scimId);
  if (members) changes.members = members;
  return { name: after?.displayName ?? before?.displayName ?? null, changes };
}
