// One writer per resource at a time (README "Consistency").
//
// Keys: `user:<SCIM id>` and `group:<GroupId>` (userKey/groupKey). Every mutation of one user
// (PUT, PATCH, DELETE, deactivate, reactivate) holds its user key for the whole operation; every
// change of one group (membership, rename, delete) holds its group key. A membership change touches
// a pair (group, user): the group operation takes the users' keys too, around each batch of member
// steps (upstream calls, then the batch's mirror rows and tombstones committed), so every write of a
// pair runs under that user's key, whoever started it.
//
// Lock order, so that nobody waits in a cycle: a group key before user keys; a batch takes its user
// keys in sorted order; any other holder of a user key never waits for another key (a user
// operation, reactivation's membership restore included, takes no group key). Waits for a group
// key hold nothing. Hence no deadlock, in one process and across replicas (the store lock below
// follows the same order; groups-members.ts says how a batch avoids waiting on pooled sessions).
//
// In the process: a FIFO queue per key; the key is forgotten when its queue empties. Across replicas
// (PostgreSQL): BridgeStore.lockResource, taken after the in-process lock, so one replica waits on
// the database with at most one request per key.
import { StoreLockTimeoutError } from '../store/errors.js';
import type { BridgeStore } from '../store/types.js';
import { ResourceBusyError } from './errors.js';

export const userKey = (scimId: string) => `user:${scimId}`;
export const groupKey = (groupId: string) => `group:${groupId}`;

interface Waiter {
  grant: () => void;
  fail: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

interface Entry {
  /** Waiters behind the holder, first in first out. */
  queue: Waiter[];
}

/** The error for a wait that outlived the request's deadline: nothing was changed. */
export function busy(key: string): ResourceBusyError {
  const kind = key.startsWith('group:') ? 'group' : 'user';
  return new ResourceBusyError(
    key,
    `another request is still changing this ${kind}; nothing was changed, retry shortly`,
  );
}

export class ResourceLocks {
  /** Present while the key is held; its queue holds the waiters. */
  private readonly held = new Map<string, Entry>();

  /**
   * Waits for `key` (FIFO) and returns its release. Rejects with ResourceBusyError when `deadlineAt` passes
   * first (the waiter leaves the queue).
   */
  acquire(key: string, deadlineAt?: number): Promise<() => void> {
    const entry = this.held.get(key);
    if (!entry) {
      this.held.set(key, { queue: [] });
      return Promise.resolve(this.releaser(key));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          if (waiter.timer) clearTimeout(waiter.timer);
          resolve(this.releaser(key));
        },
        fail: reject,
      };
      if (deadlineAt !== undefined) {
        waiter.timer = setTimeout(
          () => {
            const i = entry.queue.indexOf(waiter);
            if (i >= 0) entry.queue.splice(i, 1);
            reject(busy(key));
          },
          Math.max(0, deadlineAt - Date.now()),
        );
      }
      entry.queue.push(waiter);
    });
  }

  private releaser(key: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const entry = this.held.get(key);
      const next = entry?.queue.shift();
      if (next) next.grant();
      else this.held.delete(key);
    };
  }

  /** Requests waiting behind the holder of `key` (0 when free or held without waiters). */
  waiting(key: string): number {
    return this.held.get(key)?.queue.length ?? 0;
  }

  isHeld(key: string): boolean {
    return this.held.has(key);
  }

  /** Keys currently held (tests check that nothing leaks). */
  get size(): number {
    return this.held.size;
  }
}

/**
 * The in-process lock, then the store's lock across replicas (when the store has one). The
 * returned release frees both, the store's first; the in-process lock is always freed, and an error
 * of the store's release (its lock lost with its connection, which the database frees anyway) is
 * rethrown so the caller knows its exclusion may not have held.
 */
export async function lockResource(
  locks: ResourceLocks,
  store: BridgeStore,
  key: string,
  deadlineAt?: number,
): Promise<() => Promise<void>> {
  const local = await locks.acquire(key, deadlineAt);
  if (!store.lockResource) return async () => local();
  let remote: () => Promise<void>;
  try {
    remote = await store.lockResource(key, { deadlineAt });
  } catch (e) {
    local();
    if (e instanceof StoreLockTimeoutError) throw busy(key);
    throw e;
  }
  return async () => {
    try {
      await remote();
    } finally {
      local();
    }
  };
}

/** Runs `fn` holding `key` (in the process and, on PostgreSQL, across replicas). */
export async function withResource<T>(
  locks: ResourceLocks,
  store: BridgeStore,
  key: string,
  deadlineAt: number | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  const release = await lockResource(locks, store, key, deadlineAt);
  try {
    return await fn();
  } finally {
    await release();
  }
}
