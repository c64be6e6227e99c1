// The one limit on concurrent work: slots handed on in order, freed when a run throws, and waiters
// that give up (deadline, abort) neither run nor keep a slot.
import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit, mapLimit } from '../../src/volcengine/concurrency.js';

interface Gate {
  promise: Promise<void>;
  open(): void;
}
function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Lets queued microtasks and the limit's hand-overs run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ConcurrencyLimit', () => {
  it('runs at most `max` at once and hands freed slots to the waiters in order', async () => {
    const limit = new ConcurrencyLimit(2);
    const gates = Array.from({ length: 5 }, gate);
    const started: number[] = [];
    let active = 0;
    let peak = 0;
    const runs = gates.map((g, i) =>
      limit.run(async () => {
        started.push(i);
        peak = Math.max(peak, ++active);
        await g.promise;
        active--;
        return i * 10;
      }, 60_000),
    );
    await settle();
    expect(started).toEqual([0, 1]);
    gates[1].open();
    await settle();
    expect(started).toEqual([0, 1, 2]);
    gates[0].open();
    await settle();
    expect(started).toEqual([0, 1, 2, 3]);
    for (const g of gates) g.open();
    expect(await Promise.all(runs)).toEqual([0, 10, 20, 30, 40].map((value) => ({ ran: true, value })));
    expect(peak).toBe(2);
  });

  it('frees the slot when a run throws, and rejects with its error', async () => {
    const limit = new ConcurrencyLimit(1);
    const failing = limit.run(async () => {
      throw new Error('boom');
    }, 60_000);
    const next = limit.run(async () => 'next', 60_000);
    await expect(failing).rejects.toThrow('boom');
    expect(await next).toEqual({ ran: true, value: 'next' });
  });

  it('gives up waiting after waitMs without running, and without keeping a slot', async () => {
    const limit = new ConcurrencyLimit(1);
    const held = gate();
    const holder = limit.run(() => held.promise, 60_000);
    let ran = false;
    const late = await limit.run(async () => {
      ran = true;
    }, 5);
    expect(late).toEqual({ ran: false });
    held.open();
    await holder;
    expect(await limit.run(async () => 'after', 60_000)).toEqual({ ran: true, value: 'after' });
    expect(ran).toBe(false);
  });

  it('rejects a waiter with the abort reason when its caller aborts, and never runs it', async () => {
    const limit = new ConcurrencyLimit(1);
    const held = gate();
    const holder = limit.run(() => held.promise, 60_000);
    const ac = new AbortController();
    let ran = false;
    const waiting = limit.run(
      async () => {
        ran = true;
      },
      60_000,
      ac.signal,
    );
    ac.abort(new Error('caller went away'));
    await expect(waiting).rejects.toThrow('caller went away');
    held.open();
    await holder;
    expect(await limit.run(async () => 'free', 60_000)).toEqual({ ran: true, value: 'free' });
    expect(ran).toBe(false);
  });

  it('grants a free slot at once, even with no time to wait', async () => {
    const limit = new ConcurrencyLimit(1);
    expect(await limit.run(async () => 'now', 0)).toEqual({ ran: true, value: 'now' });
  });
});

describe('mapLimit', () => {
  it('keeps input order and at most `limit` calls in flight', async () => {
    let active = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0], 3, async (n) => {
      peak = Math.max(peak, ++active);
      for (let i = 0; i < n; i++) await settle();
      active--;
      return n * 2;
    });
    expect(out).toEqual([10, 2, 8, 4, 6, 0]);
    expect(peak).toBe(3);
  });

  it('rejects with the first failure', async () => {
    await expect(
      mapLimit([1, 2, 3], 2, async (n) => {
        if (n === 2) throw new Error(`item ${n}`);
        return n;
      }),
    ).rejects.toThrow('item 2');
  });

  it('answers an empty list with an empty list', async () => {
    expect(await mapLimit([], 4, async () => 1)).toEqual([]);
  });
});
