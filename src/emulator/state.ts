import { formatTimestamp, newOpaqueId } from './clock.js';
import { OrderedTable } from './ordered-table.js';

export interface UserRecord {
  UserId: string;
  UserName: string;
  DisplayName: string;
  Description: string;
  Email: string;
  Phone: string;
  Source: 'Manual' | 'Sync';
  IdentityType: string;
  CreatedTime: string;
  UpdatedTime: string;
  /** Lower-cased UserName / DisplayName, kept so that searches over 100k users do not re-lowercase. */
  nameKey: string;
  displayKey: string;
  /** GroupIds this user belongs to (the reverse membership index); created on first join. */
  groups: Set<string> | undefined;
}

export interface MemberRecord {
  user: UserRecord;
  JoinTime: string;
}

export interface GroupRecord {
  GroupId: string;
  GroupName: string;
  DisplayName: string;
  Description: string;
  JoinType: 'Manual' | 'Auto';
  Source: 'Manual' | 'Sync';
  CreatedTime: string;
  UpdatedTime: string;
  nameKey: string;
  displayKey: string;
  /** UserId → membership, in join order. */
  members: OrderedTable<string, MemberRecord>;
}

export interface NewUser {
  UserName: string;
  DisplayName?: string;
  Description?: string;
  Email?: string;
  Phone?: string;
}

export interface NewGroup {
  GroupName: string;
  JoinType: 'Manual' | 'Auto';
  DisplayName?: string;
  Description?: string;
}

/** A user's stored fields: what a state file keeps (the lower-cased keys and indexes are derived). */
export type UserFields = Omit<UserRecord, 'nameKey' | 'displayKey' | 'groups'>;
export type GroupFields = Omit<GroupRecord, 'nameKey' | 'displayKey' | 'members'>;

export type UserChanges = Partial<
  Pick<UserFields, 'UserName' | 'DisplayName' | 'Description' | 'Email' | 'Phone'>
>;
export type GroupChanges = Partial<Pick<GroupFields, 'DisplayName' | 'Description'>>;

/**
 * Write-through persistence (see state-file.ts). Each method is one durable change and is called
 * before the in-memory state changes, so a failed write leaves memory as it was.
 */
export interface StateSink {
  insertUser(u: UserFields): void;
  updateUser(u: UserFields): void;
  /** Also removes the user's memberships. */
  deleteUser(userId: string): void;
  insertGroup(g: GroupFields): void;
  updateGroup(g: GroupFields): void;
  deleteGroup(groupId: string): void;
  addMember(groupId: string, userId: string, joinTime: string): void;
  removeMember(groupId: string, userId: string): void;
  clear(): void;
  /** Runs fn as one transaction (bulk seeding). */
  batch(fn: () => void): void;
}

/** Name uniqueness and the ListUsers UserName filter are case-insensitive (a documented choice). */
export function nameKey(name: string): string {
  return name.toLowerCase();
}

/**
 * All emulated CloudIdentity data. Methods here enforce only structural invariants (indexes, the
 * two-way membership index); request validation and error answers live in actions/.
 */
export class EmulatorState {
  readonly users = new OrderedTable<string, UserRecord>();
  readonly usersByName = new Map<string, UserRecord>();
  readonly groups = new OrderedTable<string, GroupRecord>();
  readonly groupsByName = new Map<string, GroupRecord>();
  membershipCount = 0;
  /** Undefined for a memory-only emulator: then no mutation pays for persistence. */
  sink: StateSink | undefined;
  /** Users created inside the running batch (only user creation is batched: seeding). */
  private batchCreated: UserRecord[] | undefined;

  clear(): void {
    this.sink?.clear();
    this.users.clear();
    this.usersByName.clear();
    this.groups.clear();
    this.groupsByName.clear();
    this.membershipCount = 0;
  }

  /** `source`: 'Sync' for an account CloudIdentity's own sync made (the control API's users endpoint). */
  createUser(input: NewUser, nowMs: number, source: 'Manual' | 'Sync' = 'Manual'): UserRecord {
    const ts = formatTimestamp(nowMs);
    return this.putUser(
      {
        UserId: this.freshId(),
        UserName: input.UserName,
        DisplayName: input.DisplayName ?? '',
        Description: input.Description ?? '',
        Email: input.Email ?? '',
        Phone: input.Phone ?? '',
        Source: source,
        IdentityType: 'Create',
        CreatedTime: ts,
        UpdatedTime: ts,
      },
      true,
    );
  }

  /** Adds a user loaded from a state file, as it was (no write-through). */
  restoreUser(fields: UserFields): UserRecord {
    return this.putUser(fields, false);
  }

  private putUser(fields: UserFields, persist: boolean): UserRecord {
    if (persist) this.sink?.insertUser(fields);
    const user: UserRecord = {
      ...fields,
      nameKey: nameKey(fields.UserName),
      displayKey: fields.DisplayName.toLowerCase(),
      // Most users in a 100k load test never join a group; a Set each would dominate memory.
      groups: undefined,
    };
    this.users.add(user.UserId, user);
    this.usersByName.set(user.nameKey, user);
    if (persist) this.batchCreated?.push(user);
    return user;
  }

  /** Applies the given fields ('' clears) and bumps UpdatedTime; the caller checked name uniqueness. */
  updateUser(user: UserRecord, changes: UserChanges, nowMs: number): void {
    const next: UserFields = { ...userFields(user), ...changes, UpdatedTime: formatTimestamp(nowMs) };
    this.sink?.updateUser(next);
    if (next.UserName !== user.UserName) {
      this.usersByName.delete(user.nameKey);
      user.nameKey = nameKey(next.UserName);
      this.usersByName.set(user.nameKey, user);
    }
    Object.assign(user, next);
    user.displayKey = next.DisplayName.toLowerCase();
  }

  /** Deletes the user and every membership it had. */
  deleteUser(user: UserRecord): void {
    this.sink?.deleteUser(user.UserId);
    this.forgetUser(user);
  }

  /** The in-memory half of deleteUser. */
  private forgetUser(user: UserRecord): void {
    for (const groupId of user.groups ?? []) {
      if (this.groups.get(groupId)?.members.delete(user.UserId)) this.membershipCount--;
    }
    user.groups = undefined;
    this.users.delete(user.UserId);
    this.usersByName.delete(user.nameKey);
  }

  createGroup(input: NewGroup, nowMs: number): GroupRecord {
    const ts = formatTimestamp(nowMs);
    return this.putGroup(
      {
        GroupId: this.freshId(),
        GroupName: input.GroupName,
        DisplayName: input.DisplayName ?? '',
        Description: input.Description ?? '',
        JoinType: input.JoinType,
        Source: 'Manual',
        CreatedTime: ts,
        UpdatedTime: ts,
      },
      true,
    );
  }

  /** Adds a group loaded from a state file, as it was (no write-through). */
  restoreGroup(fields: GroupFields): GroupRecord {
    return this.putGroup(fields, false);
  }

  private putGroup(fields: GroupFields, persist: boolean): GroupRecord {
    if (persist) this.sink?.insertGroup(fields);
    const group: GroupRecord = {
      ...fields,
      nameKey: nameKey(fields.GroupName),
      displayKey: fields.DisplayName.toLowerCase(),
      members: new OrderedTable(),
    };
    this.groups.add(group.GroupId, group);
    this.groupsByName.set(group.nameKey, group);
    return group;
  }

  /** GroupName and JoinType are immutable; '' clears a field; UpdatedTime is bumped. */
  updateGroup(group: GroupRecord, changes: GroupChanges, nowMs: number): void {
    const next: GroupFields = { ...groupFields(group), ...changes, UpdatedTime: formatTimestamp(nowMs) };
    this.sink?.updateGroup(next);
    Object.assign(group, next);
    group.displayKey = next.DisplayName.toLowerCase();
  }

  deleteGroup(group: GroupRecord): void {
    this.sink?.deleteGroup(group.GroupId);
    for (const m of group.members.values()) m.user.groups?.delete(group.GroupId);
    this.membershipCount -= group.members.size;
    group.members.clear();
    this.groups.delete(group.GroupId);
    this.groupsByName.delete(group.nameKey);
  }

  addMember(group: GroupRecord, user: UserRecord, nowMs: number): void {
    const joinTime = formatTimestamp(nowMs);
    this.sink?.addMember(group.GroupId, user.UserId, joinTime);
    this.restoreMember(group, user, joinTime);
  }

  /** Adds a membership loaded from a state file (no write-through); loaded in join order. */
  restoreMember(group: GroupRecord, user: UserRecord, joinTime: string): void {
    group.members.add(user.UserId, { user, JoinTime: joinTime });
    user.groups ??= new Set();
    user.groups.add(group.GroupId);
    this.membershipCount++;
  }

  removeMember(group: GroupRecord, user: UserRecord): void {
    if (!group.members.has(user.UserId)) return;
    this.sink?.removeMember(group.GroupId, user.UserId);
    if (group.members.delete(user.UserId)) {
      user.groups?.delete(group.GroupId);
      this.membershipCount--;
    }
  }

  /** Runs a bulk user creation as one write-through transaction (or directly when memory-only). */
  batch(fn: () => void): void {
    if (!this.sink) {
      fn();
      return;
    }
    // A failed transaction writes none of the batch: memory must forget the users it created too.
    const created: UserRecord[] = [];
    this.batchCreated = created;
    try {
      this.sink.batch(fn);
    } catch (err) {
      for (const u of created) this.forgetUser(u);
      throw err;
    } finally {
      this.batchCreated = undefined;
    }
  }

  /**
   * An id unused by any live user or group. Ids are 11 random alphanumerics (62^11 ≈ 5·10^19), so a
   * deleted id coming back is as unlikely before a restart as after: no counter needs persisting.
   */
  private freshId(): string {
    for (;;) {
      const id = newOpaqueId();
      if (!this.users.has(id) && !this.groups.has(id)) return id;
    }
  }
}

function userFields(u: UserRecord): UserFields {
  return {
    UserId: u.UserId,
    UserName: u.UserName,
    DisplayName: u.DisplayName,
    Description: u.Description,
    Email: u.Email,
    Phone: u.Phone,
    Source: u.Source,
    IdentityType: u.IdentityType,
    CreatedTime: u.CreatedTime,
    UpdatedTime: u.UpdatedTime,
  };
}

function groupFields(g: GroupRecord): GroupFields {
  return {
    GroupId: g.GroupId,
    GroupName: g.GroupName,
    DisplayName: g.DisplayName,
    Description: g.Description,
    JoinType: g.JoinType,
    Source: g.Source,
    CreatedTime: g.CreatedTime,
    UpdatedTime: g.UpdatedTime,
  };
}
