// SCIM Group ⇄ CloudIdentity user group.
//
// - SCIM `id` is the CloudIdentity GroupId.
// - CloudIdentity's GroupName is immutable (UpdateGroup does not take it) while SCIM clients rename
//   groups freely. So the GroupName is chosen once, at creation, from the displayName: accents
//   dropped, other characters outside [A-Za-z0-9._-] become '-', at most 63 characters, and a
//   '-xxxxxx' random suffix when that name is already taken upstream (or 'group-xxxxxx' when nothing
//   is left, e.g. for an all-CJK name). It is never changed afterwards, whatever the renames.
// - SCIM `displayName` lives in CloudIdentity's DisplayName (≤ 64 characters; longer is a 400
//   invalidValue before any upstream call). A rename is UpdateGroup of DisplayName only. For groups
//   whose DisplayName is empty (created in the console) the GroupName is shown instead.
// - `displayName` is unique case-insensitively: the store's unique index covers groups written through
//   the bridge, a ListGroups QueryString lookup covers the others, and GroupNameAlreadyExists is a 409.
// - `externalId` lives in the store record. Groups created outside the bridge have no record until
//   their first write that needs one (rename or externalId), like users.
// - Members are read with ListGroupMembers (PageSize 100, the first page gives Total, the rest in
//   parallel). They are changed as deltas only (AddUserToGroup / RemoveUserFromGroup per member;
//   "already a member" and "not a member" count as done), so concurrent PATCHes never lose each other's
//   members. Only a `replace` of the whole member list (and removals by a non-id filter) reads the
//   current list, to compute the diff. Every change is mirrored in the store's membership table,
//   which answers a user's `groups` and the deactivation snapshot. A deactivated user (deleted
//   upstream, tombstone in the store) cannot be an upstream member: adding it records the intent in
//   its tombstoneGroupIds, which reactivation restores.

import type { Logger } from 'pino';
import type { GroupInput, GroupPatch } from '../scim/group-input.js';
import type { BridgeStore } from '../store/types.js';
import type { CloudIdentityApi } from '../volcengine/types.js';
import type { RequestContext } from './context.js';
import { GroupCreates } from './group-create.js';
import {
  type GroupListQuery,
  type GroupListResult,
  type GroupMember,
  type GroupView,
  groupVersion,
  toScimGroup,
} from './group-mapping.js';
import { GroupMembers } from './groups-members.js';
import { GroupReader } from './groups-read.js';
import { GroupWriter } from './groups-write.js';
import { Intents } from './intents.js';
import type { ResourceLocks } from './resource-locks.js';

type Json = Record<string, unknown>;

export interface GroupDirectoryOptions {
  /** Largest number of groups a filter without an index lookup may scan. */
  filterScanLimit: number;
  /** Parallel upstream calls one request makes for member pages and member changes. Default 8. */
  parallelism?: number;
  logger?: Logger;
  /** Shared with the user directory: a group change holds the group's key, each member step the user's. */
  locks: ResourceLocks;
  /** Shared with the user directory and the reconciler; a private one when omitted. */
  intents?: Intents;
}

export type { GroupView } from './group-mapping.js';

/** Groups as the bridge sees them: reads in groups-read.ts, writes in groups-write.ts. */
export class GroupDirectory {
  readonly intents: Intents;
  readonly memberOps: GroupMembers;
  private readonly reader: GroupReader;
  private readonly writer: GroupWriter;

  constructor(api: CloudIdentityApi, store: BridgeStore, options: GroupDirectoryOptions) {
    const parallelism = Math.max(1, options.parallelism ?? 8);
    this.intents = options.intents ?? new Intents(store);
    this.memberOps = new GroupMembers(api, store, options.locks, this.intents, parallelism, options.logger);
    const creates = new GroupCreates(api, store, options.locks, this.intents);
    this.reader = new GroupReader(api, store, this.memberOps, {
      filterScanLimit: options.filterScanLimit,
      parallelism,
      creates,
    });
    this.writer = new GroupWriter(api, store, this.reader, this.memberOps, {
      parallelism,
      locks: options.locks,
      intents: this.intents,
      creates,
    });
  }

  static toScim(view: GroupView, baseUrl: string): Json {
    return toScimGroup(view, baseUrl);
  }

  static version(view: GroupView): string {
    return groupVersion(view);
  }

  get(scimId: string, ctx: RequestContext, withMembers = false): Promise<GroupView> {
    return this.reader.get(scimId, ctx, withMembers);
  }

  /** Every member, via ListGroupMembers. */
  members(groupId: string, ctx: RequestContext): Promise<GroupMember[]> {
    return this.reader.members(groupId, ctx);
  }

  list(query: GroupListQuery, ctx: RequestContext): Promise<GroupListResult> {
    return this.reader.list(query, ctx);
  }

  create(input: GroupInput, ctx: RequestContext): Promise<GroupView> {
    return this.writer.create(input, ctx);
  }

  /** PUT: displayName, externalId and (when sent) the whole member list, as a diff. */
  replace(
    groupId: string,
    input: GroupInput,
    ifMatch: string | undefined,
    ctx: RequestContext,
  ): Promise<GroupView> {
    return this.writer.replace(groupId, input, ifMatch, ctx);
  }

  /** PATCH: member changes become exactly the Add/Remove calls needed. */
  patch(
    groupId: string,
    plan: GroupPatch,
    ifMatch: string | undefined,
    ctx: RequestContext,
  ): Promise<GroupView> {
    return this.writer.patch(groupId, plan, ifMatch, ctx);
  }

  /** DELETE (members removed first when CloudIdentity refuses). */
  delete(scimId: string, ifMatch: string | undefined, ctx: RequestContext): Promise<void> {
    return this.writer.delete(scimId, ifMatch, ctx);
  }
}
