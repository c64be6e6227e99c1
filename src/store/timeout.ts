// A bound on how long to wait for a store's answer (a heartbeat, a readiness ping, the outcome of a
// lost COMMIT): the wait ends with TimeoutError, and the answer, if it comes later, is ignored.

/** A wait for the store that ran past its bound. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * `promise`, or TimeoutError with `message` once `ms` have passed. The timer keeps no process alive,
 * and a rejection that comes after the bound is not left unhandled (the race has a handler on it).
 */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  message = `no answer within ${ms} ms`,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(message)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
