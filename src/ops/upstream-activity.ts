// What the bridge's own calls to CloudIdentity showed lately, for readiness: while they succeed,
// the credentials are accepted and the service is reachable, and readiness need not ask again with
// a ListUsers of its own (one per READINESS_CACHE_MS per replica). Fed by the client's observer
// (every attempt, whoever made it); judged like readiness judges its own check.

import type { ClientObserver } from '../volcengine/call.js';
import { CREDENTIAL_CODES } from '../volcengine/errors.js';

/** Outcomes that mean the service was not reached (transport failure kinds). */
const UNREACHED = new Set(['network', 'timeout', 'deadline', 'malformed']);
/** Upstream error codes that say the credentials lack a permission (they were accepted). */
export const PERMISSION_CODES: ReadonlySet<string> = new Set([
  'AccessDenied',
  'LackPolicy',
  'PermissionError',
]);
/** Upstream error codes that say the credentials cannot do what the bridge needs. */
const REFUSED = new Set([...CREDENTIAL_CODES, ...PERMISSION_CODES]);

export class UpstreamActivity {
  private lastGood = Number.NEGATIVE_INFINITY;
  private lastBad = Number.NEGATIVE_INFINITY;

  constructor(private readonly now: () => number = Date.now) {}

  /** For the client's options (combine with others through bothObservers). */
  readonly observer: ClientObserver = {
    onAttempt: (e) => this.record(e.outcome),
  };

  /**
   * One attempt's outcome ('ok', an upstream Error.Code or a transport failure kind). Like
   * readiness's own check, an answered error other than a credential or permission one (throttled,
   * a conflict, a 5xx) still shows the service reached and the credentials accepted.
   */
  record(outcome: string): void {
    if (outcome !== 'ok' && (UNREACHED.has(outcome) || REFUSED.has(outcome))) this.lastBad = this.now();
    else this.lastGood = this.now();
  }

  /**
   * When an attempt last showed CloudIdentity usable, if none has failed since (a failing one
   * means only a check of readiness's own can say whether the failure is general); else undefined.
   */
  usableSince(): number | undefined {
    return this.lastGood > this.lastBad ? this.lastGood : undefined;
  }
}

/** One observer that reports to both (the client takes one). */
export function bothObservers(a: ClientObserver, b: ClientObserver): ClientObserver {
  return {
    onAttempt: (e) => {
      a.onAttempt?.(e);
      b.onAttempt?.(e);
    },
    onRetry: (e) => {
      a.onRetry?.(e);
      b.onRetry?.(e);
    },
    onDeadline: (e) => {
      a.onDeadline?.(e);
      b.onDeadline?.(e);
    },
  };
}
