import type { UpstreamCallLog } from './types.js';

// Which CloudIdentity calls a piece of work made (a SCIM request, a reconciler action), for its
// access-log line and its audit record: the work passes its log in every call's CallOptions and
// the call loop appends each attempt to it.

/** At most this many ids and calls are kept per piece of work (a scan may make many calls). */
const MAX_CALLS = 50;

export function newCallLog(): UpstreamCallLog {
  return { requestIds: [], calls: [] };
}

/** Appends one attempt to `log`. */
export function recordAttempt(
  log: UpstreamCallLog,
  e: { action: string; outcome: string; requestId?: string },
): void {
  if (e.requestId && log.requestIds.length < MAX_CALLS) log.requestIds.push(e.requestId);
  if (log.calls.length < MAX_CALLS)
    log.calls.push({ action: e.action, outcome: e.outcome, requestId: e.requestId });
}
