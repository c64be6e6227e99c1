// Limits on concurrent work, both on p-limit (its FIFO queue hands a freed slot to the longest
// waiter): ConcurrencyLimit for the client's mutation slots, where a waiter gives up at its deadline
// or when its caller aborts, and mapLimit for the directory's bounded fan-outs.
import pLimit, { type LimitFunction } from 'p-limit';
import { abortReason } from './abort.js';

export type Slotted<T> = { ran: true; value: T } | { ran: false };

/** At most `max` runs at once; the others wait in order. */
export class ConcurrencyLimit {
  private readonly limit: LimitFunction;

  constructor(max: number) {
    this.limit = pLimit(max);
  }

  /**
   * Runs `fn` in a slot, which it holds until its promise settles (fulfilled or rejected), and gives
   * back what it gave. `{ ran: false }` when no slot came free within `waitMs` (`fn` is then never
   * run); rejects with the abort reason when `signal` aborts while waiting.
   */
  run<T>(fn: () => Promise<T>, waitMs: number, signal?: AbortSignal): Promise<Slotted<T>> {
    return new Promise<Slotted<T>>((resolve, reject) => {
      let waiting = true;
      const stopWaiting = (): void => {
        waiting = false;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const timer = setTimeout(() => {
        stopWaiting();
        resolve({ ran: false });
      }, waitMs);
      const onAbort = (): void => {
        stopWaiting();
        reject(abortReason(signal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      void this.limit(async () => {
        // A waiter that gave up keeps its place in the queue; its turn passes the slot on at once.
        if (!waiting) return;
        stopWaiting();
        try {
          resolve({ ran: true, value: await fn() });
        } catch (err) {
          reject(err);
        }
      });
    });
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in input order. */
export function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  return pLimit(limit).map(items, (item) => fn(item));
}
