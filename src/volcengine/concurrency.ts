// A limit on concurrent work: at most N holders of a slot, the others waiting in order.
import { abortReason } from './abort.js';

export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(private readonly max: number) {}

  /** Resolves true when a permit is held, false if `waitMs` passed first. Rejects if `signal` aborts. */
  acquire(waitMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.active < this.max) {
      this.active++;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve, reject) => {
      const grant = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      };
      const leave = (): void => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
      };
      const timer = setTimeout(() => {
        leave();
        signal?.removeEventListener('abort', onAbort);
        resolve(false);
      }, waitMs);
      const onAbort = (): void => {
        leave();
        clearTimeout(timer);
        reject(abortReason(signal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(grant);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    // Hand the permit straight to the next waiter so `active` never drops below the queue's needs.
    if (next) next();
    else this.active--;
  }
}
