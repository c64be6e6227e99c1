// The embedded store's state: every record in Maps, with the indexes the request path needs, so
// each lookup is O(1). Synchronous and I/O-free: memory-store.ts decides what to write, journal.ts
// makes it durable, and replay on start applies the same entries through the same code.
import { foldCase } from './fold-case.js';
import type { GroupRecord, StoreConflictError, UserQuery, UserRecord } from './types.js';

/**
 * One journal line. Entries carry absolute state (the whole record after the change), never a
 * delta, so replaying them needs no logic beyond "set" and "remove" and gives the same result
 * every time.
 */
export type JournalEntry =
  | { seq: number; op: 'putUser'; user: UserRecord }
  | { seq: number; op: 'deleteUser'; scimId: string }
  | { seq: number; op: 'putGroup'; group: GroupRecord }
  | { seq: number; op: 'deleteGroup'; scimId: string }
  | { seq: number; op: 'addMembership'; group: string; user: string }
  | { seq: number; op: 'removeMembership'; group: string; user: string };

/** Everything the state holds, as of entry `seq`: what a snapshot stores. */
export interface StateImage {
  seq: number;
  users: UserRecord[];
  groups: GroupRecord[];
  memberships: Array<[group: string, user: string]>;
}

type ConflictField = StoreConflictError['field'];

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isNullableString = (v: unknown) => v === null || typeof v === 'string';

/**
 * Why `v` cannot be a stored user, or null. Writes are checked with the same function that checks
 * the files on load, so the store never acknowledges a record it would refuse to load. Mirrors the
 * SQL columns' NOT NULL and CHECK constraints.
 */
export function userDefect(v: unknown): string | null {
  if (!isObject(v)) return 'not an object';
  if (!isString(v.scimId)) return 'scimId is not a string';
  if (!isNullableString(v.upstreamUserId)) return 'upstreamUserId is not a string or null';
  if (!isString(v.userName)) return 'userName is not a string';
  if (!isNullableString(v.externalId)) return 'externalId is not a string or null';
  if (typeof v.active !== 'boolean') return 'active is not a boolean';
  if (v.state !== 'pending' && v.state !== 'ready') return "state is not 'pending' or 'ready'";
  if (!isObject(v.attributes)) return 'attributes is not an object';
  if (!Array.isArray(v.tombstoneGroupIds) || !v.tombstoneGroupIds.every(isString)) {
    return 'tombstoneGroupIds is not a list of strings';
  }
  return timestampsDefect(v);
}

export function groupDefect(v: unknown): string | null {
  if (!isObject(v)) return 'not an object';
  if (!isString(v.scimId)) return 'scimId is not a string';
  if (!isString(v.groupName)) return 'groupName is not a string';
  if (!isString(v.displayName)) return 'displayName is not a string';
  if (!isNullableString(v.externalId)) return 'externalId is not a string or null';
  if (!isObject(v.attributes)) return 'attributes is not an object';
  return timestampsDefect(v);
}

function timestampsDefect(v: Record<string, unknown>): string | null {
  if (!Number.isSafeInteger(v.version)) return 'version is not an integer';
  if (!isString(v.createdAt) || !isString(v.updatedAt)) return 'createdAt or updatedAt is not a string';
  return null;
}

interface OrderKey {
  createdAt: string;
  id: string;
}

function compareKeys(a: OrderKey, b: OrderKey): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return 0;
}

/**
 * Ids sorted by (createdAt, scimId), the order listUsers promises. New records almost always sort
 * last (createdAt is now), so inserts are appends; deletes are a binary search and a splice.
 */
class CreationOrder {
  readonly keys: OrderKey[] = [];

  private lowerBound(key: OrderKey): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(this.keys[mid], key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(createdAt: string, id: string): void {
    const key = { createdAt, id };
    const last = this.keys[this.keys.length - 1];
    if (last === undefined || compareKeys(last, key) < 0) this.keys.push(key);
    else this.keys.splice(this.lowerBound(key), 0, key);
  }

  remove(createdAt: string, id: string): void {
    const key = { createdAt, id };
    const i = this.lowerBound(key);
    if (i < this.keys.length && compareKeys(this.keys[i], key) === 0) this.keys.splice(i, 1);
  }
}

/** countUsers without a scan: users per (active, detached, pending) combination. */
function bucketOf(r: UserRecord): number {
  return (r.active ? 1 : 0) | (r.upstreamUserId === null ? 2 : 0) | (r.state === 'pending' ? 4 : 0);
}

function bucketMatches(bucket: number, q: UserQuery): boolean {
  if (q.active !== undefined && ((bucket & 1) !== 0) !== q.active) return false;
  if (q.detached !== undefined && ((bucket & 2) !== 0) !== q.detached) return false;
  if (q.state !== undefined) {
    const pending = (bucket & 4) !== 0;
    if (q.state === 'pending' ? !pending : q.state !== 'ready' || pending) return false;
  }
  return true;
}

function userMatches(r: UserRecord, q: UserQuery): boolean {
  if (q.active !== undefined && r.active !== q.active) return false;
  if (q.detached !== undefined && (r.upstreamUserId === null) !== q.detached) return false;
  if (q.state !== undefined && r.state !== q.state) return false;
  return true;
}

function addTo(index: Map<string, Set<string>>, key: string, value: string): boolean {
  let set = index.get(key);
  if (!set) {
    set = new Set();
    index.set(key, set);
  }
  const before = set.size;
  set.add(value);
  return set.size !== before;
}

function removeFrom(index: Map<string, Set<string>>, key: string, value: string): boolean {
  const set = index.get(key);
  if (!set?.delete(value)) return false;
  if (set.size === 0) index.delete(key);
  return true;
}

function byCreation<R extends { createdAt: string; scimId: string }>(records: R[]): R[] {
  return records.sort((a, b) =>
    compareKeys({ createdAt: a.createdAt, id: a.scimId }, { createdAt: b.createdAt, id: b.scimId }),
  );
}

/**
 * Stored records are never modified in place: a change stores a new object. That is what lets a
 * snapshot capture references synchronously and serialise them later, and lets an updated record
 * share its unchanged parts with the previous version.
 */
export class MemoryState {
  /** seq of the last entry applied. */
  seq = 0;

  private readonly users = new Map<string, UserRecord>();
  private readonly userIdByName = new Map<string, string>();
  private readonly userIdByUpstream = new Map<string, string>();
  private readonly userIdsByExternalId = new Map<string, Set<string>>();
  private readonly userOrder = new CreationOrder();
  /** Detached users (pending creates, tombstones) are few and listed often by reconciliation. */
  private readonly detachedOrder = new CreationOrder();
  private readonly userCounts = [0, 0, 0, 0, 0, 0, 0, 0];

  private readonly groups = new Map<string, GroupRecord>();
  private readonly groupIdByName = new Map<string, string>();
  private readonly groupIdsByExternalId = new Map<string, Set<string>>();

  // No referential integrity, like the SQL tables: members and groups created outside the bridge
  // have no record here.
  private readonly groupsByUser = new Map<string, Set<string>>();
  private readonly usersByGroup = new Map<string, Set<string>>();
  private membershipCount = 0;

  get size(): { users: number; groups: number; memberships: number } {
    return { users: this.users.size, groups: this.groups.size, memberships: this.membershipCount };
  }

  // ---- reads (the records returned are the stored ones: callers copy before handing them out) ----

  getUser(scimId: string): UserRecord | undefined {
    return this.users.get(scimId);
  }

  userByName(userName: string): UserRecord | undefined {
    const id = this.userIdByName.get(foldCase(userName));
    return id === undefined ? undefined : this.users.get(id);
  }

  userByUpstream(upstreamUserId: string): UserRecord | undefined {
    const id = this.userIdByUpstream.get(upstreamUserId);
    return id === undefined ? undefined : this.users.get(id);
  }

  usersByExternalId(externalId: string): UserRecord[] {
    const ids = this.userIdsByExternalId.get(externalId);
    if (!ids) return [];
    return byCreation([...ids].map((id) => this.users.get(id)!));
  }

  listUsers(query: UserQuery, offset: number, limit: number): UserRecord[] {
    // The SQL store rejects these too (PostgreSQL refuses a negative OFFSET or LIMIT).
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`invalid offset ${offset}`);
    if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`invalid limit ${limit}`);
    const keys = query.detached === true ? this.detachedOrder.keys : this.userOrder.keys;
    const out: UserRecord[] = [];
    if (query.active === undefined && query.state === undefined && query.detached !== false) {
      for (let i = offset; i < keys.length && out.length < limit; i++) out.push(this.users.get(keys[i].id)!);
      return out;
    }
    let skip = offset;
    for (let i = 0; i < keys.length && out.length < limit; i++) {
      const record = this.users.get(keys[i].id)!;
      if (!userMatches(record, query)) continue;
      if (skip > 0) skip--;
      else out.push(record);
    }
    return out;
  }

  countUsers(query: UserQuery): number {
    let n = 0;
    for (let bucket = 0; bucket < 8; bucket++) if (bucketMatches(bucket, query)) n += this.userCounts[bucket];
    return n;
  }

  getGroup(scimId: string): GroupRecord | undefined {
    return this.groups.get(scimId);
  }

  groupByName(displayName: string): GroupRecord | undefined {
    const id = this.groupIdByName.get(foldCase(displayName));
    return id === undefined ? undefined : this.groups.get(id);
  }

  groupsByExternalId(externalId: string): GroupRecord[] {
    const ids = this.groupIdsByExternalId.get(externalId);
    if (!ids) return [];
    return byCreation([...ids].map((id) => this.groups.get(id)!));
  }

  /** Sorted like the SQL store's ORDER BY group_scim_id (code unit order, as in a C collation). */
  groupsOfUser(userScimId: string): string[] {
    const groups = this.groupsByUser.get(userScimId);
    return groups ? [...groups].sort() : [];
  }

  hasMembership(groupScimId: string, userScimId: string): boolean {
    return this.groupsByUser.get(userScimId)?.has(groupScimId) ?? false;
  }

  hasMembershipsOfUser(userScimId: string): boolean {
    return this.groupsByUser.has(userScimId);
  }

  hasMembershipsOfGroup(groupScimId: string): boolean {
    return this.usersByGroup.has(groupScimId);
  }

  // ---- unique constraints ----

  /**
   * The field a stored `record` would violate, checked in the order PostgreSQL checks the unique
   * indexes (primary key, upstream_user_id, user_name_lower), so both stores report the same one.
   * `replacing`: the record updates the one with its scimId rather than adding one.
   */
  userConflict(record: UserRecord, replacing: boolean): ConflictField | null {
    if (!replacing && this.users.has(record.scimId)) return 'scimId';
    if (record.upstreamUserId !== null) {
      const owner = this.userIdByUpstream.get(record.upstreamUserId);
      if (owner !== undefined && owner !== record.scimId) return 'upstreamUserId';
    }
    const owner = this.userIdByName.get(foldCase(record.userName));
    if (owner !== undefined && owner !== record.scimId) return 'userName';
    return null;
  }

  groupConflict(record: GroupRecord, replacing: boolean): ConflictField | null {
    if (!replacing && this.groups.has(record.scimId)) return 'scimId';
    const owner = this.groupIdByName.get(foldCase(record.displayName));
    if (owner !== undefined && owner !== record.scimId) return 'displayName';
    return null;
  }

  // ---- writes (unchecked: callers check conflicts first, so a failed write changes nothing) ----

  putUser(record: UserRecord): void {
    const old = this.users.get(record.scimId);
    if (old) this.unindexUser(old, record);
    this.users.set(record.scimId, record);
    this.indexUser(record, old);
  }

  /** Removes the user and the memberships of its id (record or not). */
  deleteUser(scimId: string): { existed: boolean; changed: boolean } {
    const old = this.users.get(scimId);
    if (old) {
      this.unindexUser(old, undefined);
      this.users.delete(scimId);
    }
    const groups = this.groupsByUser.get(scimId);
    if (groups) {
      for (const group of groups) removeFrom(this.usersByGroup, group, scimId);
      this.membershipCount -= groups.size;
      this.groupsByUser.delete(scimId);
    }
    return { existed: old !== undefined, changed: old !== undefined || groups !== undefined };
  }

  putGroup(record: GroupRecord): void {
    const old = this.groups.get(record.scimId);
    if (old) {
      this.groupIdByName.delete(foldCase(old.displayName));
      if (old.externalId !== null) removeFrom(this.groupIdsByExternalId, old.externalId, old.scimId);
    }
    this.groups.set(record.scimId, record);
    this.groupIdByName.set(foldCase(record.displayName), record.scimId);
    if (record.externalId !== null) addTo(this.groupIdsByExternalId, record.externalId, record.scimId);
  }

  deleteGroup(scimId: string): { existed: boolean; changed: boolean } {
    const old = this.groups.get(scimId);
    if (old) {
      this.groupIdByName.delete(foldCase(old.displayName));
      if (old.externalId !== null) removeFrom(this.groupIdsByExternalId, old.externalId, old.scimId);
      this.groups.delete(scimId);
    }
    const users = this.usersByGroup.get(scimId);
    if (users) {
      for (const user of users) removeFrom(this.groupsByUser, user, scimId);
      this.membershipCount -= users.size;
      this.usersByGroup.delete(scimId);
    }
    return { existed: old !== undefined, changed: old !== undefined || users !== undefined };
  }

  addMembership(groupScimId: string, userScimId: string): boolean {
    if (!addTo(this.groupsByUser, userScimId, groupScimId)) return false;
    addTo(this.usersByGroup, groupScimId, userScimId);
    this.membershipCount++;
    return true;
  }

  removeMembership(groupScimId: string, userScimId: string): boolean {
    if (!removeFrom(this.groupsByUser, userScimId, groupScimId)) return false;
    removeFrom(this.usersByGroup, groupScimId, userScimId);
    this.membershipCount--;
    return true;
  }

  private indexUser(r: UserRecord, old: UserRecord | undefined): void {
    this.userIdByName.set(foldCase(r.userName), r.scimId);
    if (r.upstreamUserId !== null) this.userIdByUpstream.set(r.upstreamUserId, r.scimId);
    if (r.externalId !== null) addTo(this.userIdsByExternalId, r.externalId, r.scimId);
    this.userCounts[bucketOf(r)]++;
    // createdAt never changes on update: the record keeps its place unless it moved in or out of
    // the detached list.
    const kept = old !== undefined && old.createdAt === r.createdAt;
    if (!kept) this.userOrder.insert(r.createdAt, r.scimId);
    if (r.upstreamUserId === null && !(kept && old.upstreamUserId === null)) {
      this.detachedOrder.insert(r.createdAt, r.scimId);
    }
  }

  private unindexUser(old: UserRecord, next: UserRecord | undefined): void {
    this.userIdByName.delete(foldCase(old.userName));
    if (old.upstreamUserId !== null) this.userIdByUpstream.delete(old.upstreamUserId);
    if (old.externalId !== null) removeFrom(this.userIdsByExternalId, old.externalId, old.scimId);
    this.userCounts[bucketOf(old)]--;
    const kept = next !== undefined && next.createdAt === old.createdAt;
    if (!kept) this.userOrder.remove(old.createdAt, old.scimId);
    if (old.upstreamUserId === null && !(kept && next.upstreamUserId === null)) {
      this.detachedOrder.remove(old.createdAt, old.scimId);
    }
  }

  // ---- replay and snapshots ----

  /**
   * Applies a replayed entry. Entries were checked when they were first applied, so a violation here
   * means the files are inconsistent: throws rather than load a state the store could never reach.
   */
  apply(entry: JournalEntry): void {
    switch (entry.op) {
      case 'putUser': {
        const conflict = this.userConflict(entry.user, true);
        if (conflict) throw new Error(`user ${entry.user.scimId} duplicates another user's ${conflict}`);
        this.putUser(entry.user);
        break;
      }
      case 'deleteUser':
        this.deleteUser(entry.scimId);
        break;
      case 'putGroup': {
        const conflict = this.groupConflict(entry.group, true);
        if (conflict) throw new Error(`group ${entry.group.scimId} duplicates another group's ${conflict}`);
        this.putGroup(entry.group);
        break;
      }
      case 'deleteGroup':
        this.deleteGroup(entry.scimId);
        break;
      case 'addMembership':
        this.addMembership(entry.group, entry.user);
        break;
      case 'removeMembership':
        this.removeMembership(entry.group, entry.user);
        break;
    }
    this.seq = entry.seq;
  }

  /** Loads a snapshot into an empty state, with the same checks as replay. */
  load(image: StateImage): void {
    for (const user of image.users) {
      const conflict = this.userConflict(user, false);
      if (conflict) throw new Error(`user ${user.scimId} duplicates another user's ${conflict}`);
      this.putUser(user);
    }
    for (const group of image.groups) {
      const conflict = this.groupConflict(group, false);
      if (conflict) throw new Error(`group ${group.scimId} duplicates another group's ${conflict}`);
      this.putGroup(group);
    }
    for (const [group, user] of image.memberships) this.addMembership(group, user);
    this.seq = image.seq;
  }

  /**
   * The current state by reference (records are immutable), captured synchronously so it is exactly
   * the state as of `seq`; serialising it can then take its time.
   */
  image(): StateImage {
    const memberships: Array<[string, string]> = [];
    for (const [group, users] of this.usersByGroup) for (const user of users) memberships.push([group, user]);
    return {
      seq: this.seq,
      users: this.userOrder.keys.map((k) => this.users.get(k.id)!),
      groups: [...this.groups.values()],
      memberships,
    };
  }
}
