// The SCIM shape of groups (views, ETags, GroupName derivation, users' `groups` from the membership
// mirror), shared by the group reads and writes and by the user reads.
import { randomBytes } from 'node:crypto';
import type { Filter } from '../scim-model/filter.js';
import { GROUP_SCHEMA } from '../scim-model/schemas.js';
import type { BridgeStore, GroupRecord } from '../store/types.js';
import type { CloudIdentityGroup } from '../volcengine/types.js';
import { toUtc } from './user-mapping.js';

type Json = Record<string, unknown>;

export interface GroupMember {
  /** user SCIM id */
  value: string;
  display?: string;
}

export interface GroupView {
  scimId: string;
  record: GroupRecord | null;
  upstream: CloudIdentityGroup;
  /** Loaded only when the response includes members. */
  members?: GroupMember[];
}

export interface GroupListQuery {
  filter?: Filter;
  startIndex: number;
  count: number;
  /** load members for the returned groups */
  members: boolean;
}

export interface GroupListResult {
  total: number;
  views: GroupView[];
}

export const GROUP_NAME_MAX = 63;
export const FALLBACK_GROUP_NAME = 'group';

/** The SCIM form of a group. `baseUrl` is the SCIM base (…/scim/v2). */
export function toScimGroup(view: GroupView, baseUrl: string): Json {
  const { record, upstream } = view;
  const created = toUtc(upstream.CreatedTime) ?? record?.createdAt;
  const lastModified = [record?.updatedAt, toUtc(upstream.UpdatedTime)].filter(Boolean).sort().pop();
  return {
    schemas: [GROUP_SCHEMA],
    id: view.scimId,
    ...(record?.externalId ? { externalId: record.externalId } : {}),
    displayName: displayNameOf(upstream),
    ...(view.members
      ? {
          members: view.members.map((m) => ({
            value: m.value,
            $ref: `${baseUrl}/Users/${encodeURIComponent(m.value)}`,
            ...(m.display ? { display: m.display } : {}),
            type: 'User',
          })),
        }
      : {}),
    meta: {
      resourceType: 'Group',
      ...(created ? { created } : {}),
      ...(lastModified ? { lastModified } : {}),
      location: `${baseUrl}/Groups/${encodeURIComponent(view.scimId)}`,
      version: groupVersion(view),
    },
  };
}

/** Weak ETag: the store version, or for groups the bridge never wrote, CloudIdentity's UpdatedTime. */
export function groupVersion(view: GroupView): string {
  if (view.record) return `W/"${view.record.version}"`;
  return `W/"g${Date.parse(view.upstream.UpdatedTime ?? '') || 0}"`;
}

export function displayNameOf(group: CloudIdentityGroup): string {
  return group.DisplayName || group.GroupName;
}

/** The GroupName derived from a displayName (before uniquifying). */
export function groupNameFor(displayName: string): string {
  const cleaned = displayName
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, GROUP_NAME_MAX)
    .replace(/[-.]+$/, '');
  return cleaned || FALLBACK_GROUP_NAME;
}

export function withSuffix(name: string): string {
  const suffix = randomBytes(4).toString('hex').slice(0, 6);
  return `${name.slice(0, GROUP_NAME_MAX - suffix.length - 1)}-${suffix}`;
}

/**
 * Users' `groups` (read-only) from the store's membership mirror, for many users in two queries:
 * no upstream call, no scan of groups. It lists the memberships made through the bridge
 * (CloudIdentity has no "groups of a user" lookup); memberships made in the console are not seen.
 */
export async function groupsOfUsersForScim(
  store: BridgeStore,
  userScimIds: string[],
  groupLocation: (groupId: string) => string,
): Promise<Map<string, Json[]>> {
  const byUser = await store.groupsOfUsers(userScimIds);
  const result = new Map<string, Json[]>();
  // Most users belong to no group the bridge made: no second query for them.
  if (byUser.size === 0) return result;
  const records = await store.getGroups([...new Set([...byUser.values()].flat())]);
  for (const [userId, ids] of byUser) {
    result.set(
      userId,
      userGroupsForScim(
        ids.map((id) => ({ scimId: id, displayName: records.get(id)?.displayName ?? null })),
        groupLocation,
      ),
    );
  }
  return result;
}

/** A user's read-only `groups` value. */
export function userGroupsForScim(
  groups: Array<{ scimId: string; displayName: string | null }>,
  groupLocation: (groupId: string) => string,
): Json[] {
  return groups.map(({ scimId, displayName }) => ({
    value: scimId,
    $ref: groupLocation(scimId),
    ...(displayName ? { display: displayName } : {}),
    type: 'direct',
  }));
}
