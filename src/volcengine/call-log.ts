import { AsyncLocalStorage } from 'node:async_hooks';

// Which CloudIdentity calls a piece of work made (a SCIM request, a reconciler action), for its
// access-log line and its audit record, without threading a collector through every call: the
// client's observer appends each attempt to the log of the work in progress, if any.

export interface UpstreamCall {
  action: string;
  requestId?: string;
  /** 'ok' or the upstream error code / transport failure kind. */
  outcome: string;
}

export interface UpstreamCallLog {
  /** CloudIdentity RequestIds of every attempt, in order. */
  requestIds: string[];
  /** Every attempt (action, RequestId, outcome). */
  calls: UpstreamCall[];
}

const storage = new AsyncLocalStorage<UpstreamCallLog>();

/** At most this many ids and calls are kept per piece of work (a scan may make many calls). */
const MAX_CALLS = 50;

export function newCallLog(): UpstreamCallLog {
  return { requestIds: [], calls: [] };
}

/** Runs `fn` with `log` receiving the upstream attempts made under it. */
export function runWithCallLog<T>(log: UpstreamCallLog, fn: () => T): T {
  return storage.run(log, fn);
}

/** Runs `fn` with a log of its own, which `calls` reads (work outside a request: a reconciler action). */
export function withUpstreamLog<T>(fn: (calls: () => UpstreamCall[]) => T): T {
  const log = newCallLog();
  return storage.run(log, () => fn(() => log.calls));
}

/** One upstream attempt of the work in progress (a client observer's onAttempt). */
export function recordUpstreamAttempt(e: { action: string; outcome: string; requestId?: string }): void {
  const log = storage.getStore();
  if (!log) return;
  if (e.requestId && log.requestIds.length < MAX_CALLS) log.requestIds.push(e.requestId);
  if (log.calls.length < MAX_CALLS)
    log.calls.push({ action: e.action, outcome: e.outcome, requestId: e.requestId });
}
