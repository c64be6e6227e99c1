import { isPlainObject } from '../scim-model/normalize.js';
import { ENTERPRISE_SCHEMA, LIMITS, USER_SCHEMA, VOLC_USER_SCHEMA } from '../scim-model/schemas.js';
import { foldCase } from '../store/fold-case.js';
import type { UserRecord } from '../store/types.js';
import type { CloudIdentityUser } from '../volcengine/types.js';
import { invalidValue } from './errors.js';

// SCIM User ⇄ CloudIdentity user. CloudIdentity holds five fields; everything else
// lives in the store exactly as the client sent it.

type Json = Record<string, unknown>;

export interface UpstreamUserFields {
  UserName: string;
  DisplayName: string;
  Email: string;
  Phone: string;
  Description: string;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
}

/** primary, else one of the preferred types, else the first. */
function pickMultiValued(values: unknown, preferredTypes: string[]): string | undefined {
  if (!Array.isArray(values)) return undefined;
  const items = values.filter(isPlainObject).filter((v) => str(v.value));
  const byType = (t: string) => items.find((v) => typeof v.type === 'string' && v.type.toLowerCase() === t);
  const chosen =
    items.find((v) => v.primary === true) ?? preferredTypes.map(byType).find(Boolean) ?? items[0];
  return chosen ? String(chosen.value) : undefined;
}

function checkLength(attribute: string, value: string, limit: number): void {
  if ([...value].length > limit) {
    throw invalidValue(
      `${attribute} is ${[...value].length} characters long; CloudIdentity accepts at most ${limit}`,
    );
  }
}

export function derivedDisplayName(attributes: Json): { value: string; explicit: boolean } {
  const explicit = str(attributes.displayName);
  if (explicit) return { value: explicit, explicit: true };
  const name = isPlainObject(attributes.name) ? attributes.name : {};
  const formatted = str(name.formatted);
  const joined = [str(name.givenName), str(name.familyName)].filter(Boolean).join(' ');
  return { value: formatted ?? (joined || String(attributes.userName ?? '')), explicit: false };
}

/** The DisplayName the bridge derives when the client sent none (shortened to CloudIdentity's limit). */
function fallbackDisplayName(attributes: Json): string {
  return [...derivedDisplayName(attributes).value].slice(0, LIMITS.displayName).join('');
}

/**
 * Is CloudIdentity's DisplayName only the bridge's stand-in for a displayName the client never set
 * (CloudIdentity wants one)? Then SCIM does not show it: a read returns what the client set, and
 * after `remove displayName` no displayName (RFC 7644 §3.5.2.2). A value changed in the console
 * differs from the stand-in and is shown.
 */
function isFallbackDisplayName(record: UserRecord | null, upstreamDisplayName: string): boolean {
  if (!record || str(record.attributes.displayName)) return false;
  return upstreamDisplayName === fallbackDisplayName(record.attributes);
}

/**
 * The CloudIdentity fields for a SCIM user, or a 400 naming the attribute over its limit.
 * A display name the bridge derived (from name) is shortened rather than refused: the client
 * never sent it.
 */
export function upstreamFieldsFor(attributes: Json, description: string | undefined): UpstreamUserFields {
  const userName = str(attributes.userName);
  if (!userName) throw invalidValue('userName is required and must be a non-empty string');
  checkLength('userName', userName, LIMITS.userName);
  const display = derivedDisplayName(attributes);
  if (display.explicit) checkLength('displayName', display.value, LIMITS.displayName);
  const email = pickMultiValued(attributes.emails, ['work']) ?? '';
  checkLength('emails.value', email, LIMITS.email);
  const phone = pickMultiValued(attributes.phoneNumbers, ['work', 'mobile']) ?? '';
  checkLength('phoneNumbers.value', phone, LIMITS.phone);
  checkLength(`${VOLC_USER_SCHEMA}:description`, description ?? '', LIMITS.description);
  return {
    UserName: userName,
    DisplayName: display.explicit ? display.value : fallbackDisplayName(attributes),
    Email: email,
    Phone: phone,
    Description: description ?? '',
  };
}

/** The fields of `desired` that differ from what CloudIdentity holds ('' clears a field). */
export function changedFields(
  live: CloudIdentityUser,
  desired: UpstreamUserFields,
): Partial<UpstreamUserFields> {
  const changes: Partial<UpstreamUserFields> = {};
  for (const key of Object.keys(desired) as (keyof UpstreamUserFields)[]) {
    if ((live[key] ?? '') !== desired[key]) changes[key] = desired[key];
  }
  return changes;
}

/** CloudIdentity `2024-07-22T21:53:54+08:00` → RFC 3339 UTC. */
export function toUtc(timestamp: string | undefined): string | undefined {
  if (!timestamp) return undefined;
  const t = Date.parse(timestamp);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

export interface UserView {
  scimId: string;
  record: UserRecord | null;
  upstream: CloudIdentityUser | null;
  /** read-only `groups`, when loaded (see UserDirectory.withGroups) */
  groups?: Json[];
}

/** Weak ETag: the store version, or for users the bridge never wrote, CloudIdentity's UpdatedTime. */
export function userVersion(view: UserView): string {
  if (view.record) return `W/"${view.record.version}"`;
  return `W/"u${Date.parse(view.upstream?.UpdatedTime ?? '') || 0}"`;
}

/** Replaces the chosen element's value with CloudIdentity's, when it was changed there (console). */
function withUpstreamValue(
  values: unknown,
  upstreamValue: string | undefined,
  preferred: string[],
  type: string,
) {
  if (!upstreamValue) return Array.isArray(values) && values.length > 0 ? values : undefined;
  if (!Array.isArray(values) || values.length === 0) return [{ value: upstreamValue, type, primary: true }];
  if (pickMultiValued(values, preferred) === upstreamValue) return values;
  const items = values.map((v) => (isPlainObject(v) ? { ...v } : v));
  const target =
    items.find((v) => isPlainObject(v) && v.primary === true) ??
    items.find((v) => isPlainObject(v) && preferred.includes(String(v.type).toLowerCase())) ??
    items[0];
  if (isPlainObject(target)) target.value = upstreamValue;
  return items;
}

export function toScimUser(view: UserView, location: string): Json {
  const { record, upstream } = view;
  const attributes: Json = { ...(record?.attributes ?? {}) };
  const volc: Json = isPlainObject(attributes[VOLC_USER_SCHEMA])
    ? { ...(attributes[VOLC_USER_SCHEMA] as Json) }
    : {};
  delete attributes[VOLC_USER_SCHEMA];
  if (upstream) {
    attributes.userName = upstream.UserName;
    if (upstream.DisplayName && !isFallbackDisplayName(record, upstream.DisplayName))
      attributes.displayName = upstream.DisplayName;
    const emails = withUpstreamValue(attributes.emails, upstream.Email, ['work'], 'work');
    if (emails) attributes.emails = emails;
    const phones = withUpstreamValue(attributes.phoneNumbers, upstream.Phone, ['work', 'mobile'], 'work');
    if (phones) attributes.phoneNumbers = phones;
    if (upstream.Description) volc.description = upstream.Description;
    else delete volc.description;
    if (upstream.Source) volc.source = upstream.Source;
    if (upstream.IdentityType) volc.identityType = upstream.IdentityType;
  }
  const schemas = [USER_SCHEMA];
  if (isPlainObject(attributes[ENTERPRISE_SCHEMA])) schemas.push(ENTERPRISE_SCHEMA);
  if (Object.keys(volc).length > 0) schemas.push(VOLC_USER_SCHEMA);
  const created = record?.createdAt ?? toUtc(upstream?.CreatedTime);
  const upstreamModified = toUtc(upstream?.UpdatedTime);
  const lastModified = [record?.updatedAt, upstreamModified].filter(Boolean).sort().pop();
  return {
    schemas,
    id: view.scimId,
    ...(record?.externalId ? { externalId: record.externalId } : {}),
    ...attributes,
    active: record ? record.active : true,
    ...(view.groups?.length ? { groups: view.groups } : {}),
    ...(Object.keys(volc).length > 0 ? { [VOLC_USER_SCHEMA]: volc } : {}),
    meta: {
      resourceType: 'User',
      ...(created ? { created } : {}),
      ...(lastModified ? { lastModified } : {}),
      location,
      version: userVersion(view),
    },
  };
}

/** The account mapped by `record` carries another userName than the one the bridge provisioned (renamed in the console). */
export function renamedUpstream(record: UserRecord, upstream: CloudIdentityUser): boolean {
  return (
    record.upstreamUserId === upstream.UserId && foldCase(record.userName) !== foldCase(upstream.UserName)
  );
}
