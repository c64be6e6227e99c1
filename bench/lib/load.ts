// A closed-loop load generator: `concurrency` workers, each issuing one request after the other
// until the duration is over. The same loop drives the bridge (over HTTP) and the floor (the signed
// client straight against the emulator), so both sides are timed by the same code.

/** One request: resolves to undefined on success, or to an error kind ("HTTP 409", "ECONNRESET"). */
export type Op = (worker: number) => Promise<string | undefined>;

export interface LoadResult {
  requests: number;
  errors: number;
  errorKinds: Record<string, number>;
  /** First few error details, for diagnosis. */
  errorSamples: string[];
  elapsedMs: number;
  latenciesMs: number[];
}

export function errorKind(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; name?: unknown };
    if (typeof e.code === 'string' && e.code) return e.code;
    if (typeof e.name === 'string' && e.name) return e.name;
  }
  return 'error';
}

/**
 * Runs the load. Without `ratePerSec`, every worker sends its next request as soon as the previous
 * one is answered (throughput is what the system sustains). With it, requests start on a fixed
 * schedule shared by the workers (an open-loop arrival rate, as an IdP paces its calls), each
 * timed from its actual start, so latency is measured below saturation.
 */
export async function closedLoop(opts: {
  concurrency: number;
  durationMs: number;
  op: Op;
  ratePerSec?: number;
}): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  const errorKinds: Record<string, number> = {};
  const errorSamples: string[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + opts.durationMs;
  const interval = opts.ratePerSec ? 1000 / opts.ratePerSec : 0;
  let nextSlot = start;
  const worker = async (w: number) => {
    for (;;) {
      if (interval > 0) {
        const slot = nextSlot;
        if (slot >= end) break;
        nextSlot += interval;
        const wait = slot - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      } else if (performance.now() >= end) break;
      const t0 = performance.now();
      let failure: string | undefined;
      try {
        failure = await opts.op(w);
      } catch (err) {
        failure = errorKind(err);
        if (errorSamples.length < 5) errorSamples.push(err instanceof Error ? err.message : String(err));
      }
      latenciesMs.push(performance.now() - t0);
      if (failure !== undefined) {
        errors++;
        errorKinds[failure] = (errorKinds[failure] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, (_, w) => worker(w)));
  return {
    requests: latenciesMs.length,
    errors,
    errorKinds,
    errorSamples,
    elapsedMs: performance.now() - start,
    latenciesMs,
  };
}

/** Runs `fn` over `items` with at most `limit` in flight (setup work, not timed). */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
