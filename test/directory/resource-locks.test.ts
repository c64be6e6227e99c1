import { describe, expect, it } from 'vitest';
import { ResourceBusyError } from '../../src/directory/errors.js';
import { ResourceLocks } from '../../src/directory/resource-locks.js';

describe('ResourceLocks', () => {
  it('grants one key to one holder at a time, first come first served, and forgets idle keys', async () => {
    const locks = new ResourceLocks();
    const order: number[] = [];
    const first = await locks.acquire('user:a');
    const waiters = [1, 2, 3].map((n) =>
      locks.acquire('user:a').then((release) => {
        order.push(n);
        release();
      }),
    );
    expect(locks.waiting('user:a')).toBe(3);
    // Another key is independent.
    const other = await locks.acquire('user:b');
    other();
    expect(order).toEqual([]);
    first();
    first(); // a second release is a no-op, not a grant to two waiters
    await Promise.all(waiters);
    expect(order).toEqual([1, 2, 3]);
    expect(locks.size).toBe(0);
  });

  it('a waiter whose deadline passes leaves the queue with ResourceBusyError and the others still get the key', async () => {
    const locks = new ResourceLocks();
    const holder = await locks.acquire('group:g');
    const late = locks.acquire('group:g', Date.now());
    const next = locks.acquire('group:g');
    const err = await late.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceBusyError);
    expect(err).toMatchObject({ code: 'RESOURCE_BUSY', key: 'group:g', decided: false });
    expect(locks.waiting('group:g')).toBe(1);
    holder();
    (await next)();
    expect(locks.size).toBe(0);
  });
});
