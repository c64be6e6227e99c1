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

  clear(): void {
    this.users.clear();
    this.usersByName.clear();
    this.groups.clear();
    this.groupsByName.clear();
    this.membershipCount = 0;
  }

  createUser(input: NewUser, nowMs: number): UserRecord {
    const ts = formatTimestamp(nowMs);
    const user: UserRecord = {
      UserId: this.freshId(),
      UserName: input.UserName,
      DisplayName: input.DisplayName ?? '',
      Description: input.Description ?? '',
      Email: input.Email ?? '',
      Phone: input.Phone ?? '',
      Source: 'Manual',
      IdentityType: 'Create',
      CreatedTime: ts,
      UpdatedTime: ts,
      nameKey: nameKey(input.UserName),
      displayKey: (input.DisplayName ?? '').toLowerCase(),
      // Most users in a 100k load test never join a group; a Set each would dominate memory.
      groups: undefined,
    };
    this.users.add(user.UserId, user);
    this.usersByName.set(user.nameKey, user);
    return user;
  }

  renameUser(user: UserRecord, newName: string): void {
    this.usersByName.delete(user.nameKey);
    user.UserName = newName;
    user.nameKey = nameKey(newName);
    this.usersByName.set(user.nameKey, user);
  }

  /** Deletes the user and every membership it had. */
  deleteUser(user: UserRecord): void {
    for (const groupId of user.groups ?? []) {
      if (this.groups.get(groupId)?.members.delete(user.UserId)) this.membershipCount--;
    }
    user.groups = undefined;
    this.users.delete(user.UserId);
    this.usersByName.delete(user.nameKey);
  }

  createGroup(input: NewGroup, nowMs: number): GroupRecord {
    const ts = formatTimestamp(nowMs);
    const group: GroupRecord = {
      GroupId: this.freshId(),
      GroupName: input.GroupName,
      DisplayName: input.DisplayName ?? '',
      Description: input.Description ?? '',
      JoinType: input.JoinType,
      Source: 'Manual',
      CreatedTime: ts,
      UpdatedTime: ts,
      nameKey: nameKey(input.GroupName),
      displayKey: (input.DisplayName ?? '').toLowerCase(),
      members: new OrderedTable(),
    };
    this.groups.add(group.GroupId, group);
    this.groupsByName.set(group.nameKey, group);
    return group;
  }

  deleteGroup(group: GroupRecord): void {
    for (const m of group.members.values()) m.user.groups?.delete(group.GroupId);
    this.membershipCount -= group.members.size;
    group.members.clear();
    this.groups.delete(group.GroupId);
    this.groupsByName.delete(group.nameKey);
  }

  addMember(group: GroupRecord, user: UserRecord, nowMs: number): void {
    group.members.add(user.UserId, { user, JoinTime: formatTimestamp(nowMs) });
    user.groups ??= new Set();
    user.groups.add(group.GroupId);
    this.membershipCount++;
  }

  removeMember(group: GroupRecord, user: UserRecord): void {
    if (group.members.delete(user.UserId)) {
      user.groups?.delete(group.GroupId);
      this.membershipCount--;
    }
  }

  /** An id unused by any user or group. */
  private freshId(): string {
    for (;;) {
      const id = newOpaqueId();
      if (!this.users.has(id) && !this.groups.has(id)) return id;
    }
  }
}
