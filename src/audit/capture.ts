import { AsyncLocalStorage } from 'node:async_hooks';
import type { BridgeStore, GroupRecord, UserRecord } from '../store/types.js';

// What a SCIM request did to the store, seen from the store calls the directory makes while serving
// it: each record as first read (its state before the request: the directory reads a resource
// under its lock before changing it) and as last written. The audit record's "what changed" is the
// difference. Watching the store costs no extra query and needs no change in the directory layer.

export interface StoreCapture {
  /** scimId → record as first seen in this request (null: it did not exist, it was inserted). */
  usersBefore: Map<string, UserRecord | null>;
  usersAfter: Map<string, UserRecord | 'deleted'>;
  groupsBefore: Map<string, GroupRecord | null>;
  groupsAfter: Map<string, GroupRecord | 'deleted'>;
  /** Membership mirror changes, in order: [group, user, 'add' | 'remove']. */
  memberships: Array<[string, string, 'add' | 'remove']>;
}

const storage = new AsyncLocalStorage<StoreCapture>();

export function newCapture(): StoreCapture {
  return {
    usersBefore: new Map(),
    usersAfter: new Map(),
    groupsBefore: new Map(),
    groupsAfter: new Map(),
    memberships: [],
  };
}

/** Runs `fn` (the rest of the request) with `capture` receiving the store calls made under it. */
export function runCaptured<T>(capture: StoreCapture, fn: () => T): T {
  return storage.run(capture, fn);
}

function seenUser(c: StoreCapture, record: UserRecord | null | undefined): void {
  if (record && !c.usersBefore.has(record.scimId)) c.usersBefore.set(record.scimId, record);
}

function seenGroup(c: StoreCapture, record: GroupRecord | null | undefined): void {
  if (record && !c.groupsBefore.has(record.scimId)) c.groupsBefore.set(record.scimId, record);
}

type Observe = (c: StoreCapture, result: unknown, args: unknown[]) => void;

const OBSERVERS: Record<string, Observe> = {
  getUser: (c, r) => seenUser(c, r as UserRecord | null),
  findUserByUserName: (c, r) => seenUser(c, r as UserRecord | null),
  findUsersByExternalId: (c, r) => {
    for (const u of r as UserRecord[]) seenUser(c, u);
  },
  getUsersByUpstreamIds: (c, r) => {
    for (const u of (r as Map<string, UserRecord>).values()) seenUser(c, u);
  },
  insertUser: (c, r) => {
    const u = r as UserRecord;
    if (!c.usersBefore.has(u.scimId)) c.usersBefore.set(u.scimId, null);
    c.usersAfter.set(u.scimId, u);
  },
  updateUser: (c, r) => {
    if (r) c.usersAfter.set((r as UserRecord).scimId, r as UserRecord);
  },
  deleteUser: (c, r, [id]) => {
    if (r) c.usersAfter.set(id as string, 'deleted');
  },
  getGroup: (c, r) => seenGroup(c, r as GroupRecord | null),
  findGroupByDisplayName: (c, r) => seenGroup(c, r as GroupRecord | null),
  findGroupsByExternalId: (c, r) => {
    for (const g of r as GroupRecord[]) seenGroup(c, g);
  },
  getGroups: (c, r) => {
    for (const g of (r as Map<string, GroupRecord>).values()) seenGroup(c, g);
  },
  insertGroup: (c, r) => {
    const g = r as GroupRecord;
    if (!c.groupsBefore.has(g.scimId)) c.groupsBefore.set(g.scimId, null);
    c.groupsAfter.set(g.scimId, g);
  },
  updateGroup: (c, r) => {
    if (r) c.groupsAfter.set((r as GroupRecord).scimId, r as GroupRecord);
  },
  deleteGroup: (c, r, [id]) => {
    if (r) c.groupsAfter.set(id as string, 'deleted');
  },
  addMembership: (c, _r, [g, u]) => {
    c.memberships.push([g as string, u as string, 'add']);
  },
  removeMembership: (c, _r, [g, u]) => {
    c.memberships.push([g as string, u as string, 'remove']);
  },
};

/**
 * The store as the directories see it: every call passes through unchanged; inside a captured
 * request, the records read and written are noted (a Map lookup per call, no extra query).
 */
export function capturingStore(store: BridgeStore): BridgeStore {
  const wrappers = new Map<string, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      const observe = OBSERVERS[prop];
      if (!observe) return (value as (...a: unknown[]) => unknown).bind(target);
      let wrapper = wrappers.get(prop);
      if (!wrapper) {
        const fn = value as (...args: unknown[]) => Promise<unknown>;
        wrapper = async (...args: unknown[]) => {
          const result = await fn.apply(target, args);
          const capture = storage.getStore();
          if (capture) observe(capture, result, args);
          return result;
        };
        wrappers.set(prop, wrapper);
      }
      return wrapper;
    },
  });
}
