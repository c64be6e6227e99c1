// CloudIdentity (service "cloudidentity", version 2023-01-01) request and result shapes.
// Field names are exactly the wire names; all values are strings unless noted.

export interface CloudIdentityUser {
  UserId: string;
  UserName: string;
  DisplayName?: string;
  Description?: string;
  Email?: string;
  Phone?: string;
  Source?: 'Manual' | 'Sync' | string;
  IdentityType?: string;
  CreatedTime: string;
  UpdatedTime: string;
}

export interface CloudIdentityGroup {
  GroupId: string;
  GroupName: string;
  DisplayName?: string;
  Description?: string;
  JoinType: 'Manual' | 'Auto' | string;
  Source?: string;
  CreatedTime: string;
  UpdatedTime: string;
}

export interface CloudIdentityGroupMember {
  UserId: string;
  UserName: string;
  DisplayName?: string;
  Description?: string;
  Email?: string;
  Phone?: string;
  Source?: string;
  IdentityType?: string;
  JoinTime: string;
}

export interface PageInput {
  /** 1-based, default 1 */
  PageNumber?: number;
  /** 1..100, default 10 */
  PageSize?: number;
}

export interface PageResult {
  PageNumber: number;
  PageSize: number;
  Total: number;
}

export interface CreateUserInput {
  UserName: string;
  DisplayName?: string;
  Description?: string;
  Email?: string;
  Phone?: string;
}
export interface UpdateUserInput {
  UserId: string;
  UserName?: string;
  DisplayName?: string;
  Description?: string;
  Email?: string;
  Phone?: string;
}
export interface ListUsersInput extends PageInput {
  QueryString?: string;
  UserName?: string;
  Source?: 'Manual' | 'Sync';
}
export interface ListUsersResult extends PageResult {
  Users: CloudIdentityUser[];
}

export interface CreateGroupInput {
  GroupName: string;
  JoinType: 'Manual' | 'Auto';
  DisplayName?: string;
  Description?: string;
}
export interface UpdateGroupInput {
  GroupId: string;
  DisplayName?: string;
  Description?: string;
}
export interface ListGroupsInput extends PageInput {
  QueryString?: string;
  JoinType?: 'Manual' | 'Auto';
}
export interface ListGroupsResult extends PageResult {
  Groups: CloudIdentityGroup[];
}
export interface MembershipInput {
  GroupId: string;
  UserId: string;
}
export interface ListGroupMembersInput extends PageInput {
  GroupId: string;
  QueryString?: string;
}
export interface ListGroupMembersResult extends PageResult {
  Members: CloudIdentityGroupMember[];
}

/** One attempt of a call, as the work it served records it (access-log line, audit record). */
export interface UpstreamCall {
  action: string;
  requestId?: string;
  /** 'ok' or the upstream error code / transport failure kind. */
  outcome: string;
}

/** The CloudIdentity attempts one piece of work made (a SCIM request, a reconciler action). */
export interface UpstreamCallLog {
  /** CloudIdentity RequestIds of every attempt, in order. */
  requestIds: string[];
  /** Every attempt (action, RequestId, outcome). */
  calls: UpstreamCall[];
}

/** Per-call options. A SCIM request passes its own deadline so that retries never outlive it. */
export interface CallOptions {
  /** Absolute time (ms since epoch) after which no further attempt starts and the call fails. */
  deadlineAt?: number;
  signal?: AbortSignal;
  /** The log of the work this call serves: every attempt is appended to it. */
  calls?: UpstreamCallLog;
}

/** The typed CloudIdentity surface the rest of the bridge depends on. */
export interface CloudIdentityApi {
  createUser(input: CreateUserInput, opts?: CallOptions): Promise<CloudIdentityUser>;
  getUser(input: { UserId: string }, opts?: CallOptions): Promise<CloudIdentityUser>;
  listUsers(input: ListUsersInput, opts?: CallOptions): Promise<ListUsersResult>;
  updateUser(input: UpdateUserInput, opts?: CallOptions): Promise<void>;
  deleteUser(input: { UserId: string }, opts?: CallOptions): Promise<void>;
  createGroup(input: CreateGroupInput, opts?: CallOptions): Promise<CloudIdentityGroup>;
  getGroup(input: { GroupId: string }, opts?: CallOptions): Promise<CloudIdentityGroup>;
  listGroups(input: ListGroupsInput, opts?: CallOptions): Promise<ListGroupsResult>;
  updateGroup(input: UpdateGroupInput, opts?: CallOptions): Promise<void>;
  deleteGroup(input: { GroupId: string }, opts?: CallOptions): Promise<void>;
  addUserToGroup(input: MembershipInput, opts?: CallOptions): Promise<void>;
  removeUserFromGroup(input: MembershipInput, opts?: CallOptions): Promise<void>;
  listGroupMembers(input: ListGroupMembersInput, opts?: CallOptions): Promise<ListGroupMembersResult>;
  /** Closes the keep-alive pool. */
  close(): Promise<void>;
}
