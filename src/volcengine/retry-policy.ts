// When a failed attempt of a CloudIdentity call is tried again: the policy is data (which answers and
// socket failures are transient, how many attempts, the backoff, Retry-After), and one pure function
// decides from it, the attempt number and the failure whether to retry after N ms or give up. The
// call loop (call.ts) only carries that decision out.
import { ErrorCode } from './errors.js';

/** What one failed attempt tells the retry decision. */
export type AttemptFailure =
  /** CloudIdentity answered with an error envelope (whatever the HTTP status). */
  | { type: 'api'; code: string; httpStatus: number; retryAfterSeconds?: number }
  /** No complete answer within the per-attempt timeout. */
  | { type: 'timeout' }
  /** The call's deadline ended the attempt, or came before it could be sent. */
  | { type: 'deadline' }
  /** An answer that is no envelope (not JSON, a proxy's HTML page, over the size limit). */
  | { type: 'unreadable'; httpStatus: number }
  /** The headers arrived, then the connection broke during the body. */
  | { type: 'cut-off' }
  /** No answer: a socket-level failure, by its error code ('' when it has none). */
  | { type: 'socket'; code: string };

export interface RetryPolicy {
  /** Attempts per call, the first one included. */
  maxAttempts: number;
  /** Full-jitter backoff: after attempt n, a random delay below min(maxDelayMs, baseDelayMs × 2^(n-1)). */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Never retried, whatever the status: a count quota does not clear by waiting (throttling does). */
  finalCodes: ReadonlySet<string>;
  /** Refused before any change (throttling, a concurrent change): retried, nothing was committed. */
  refusedCodes: ReadonlySet<string>;
  refusedStatuses: ReadonlySet<number>;
  /** Transient server failures: retried, but the failed attempt may have committed. */
  serverErrorCodes: ReadonlySet<string>;
  serverErrorStatuses: ReadonlySet<number>;
  /** The signature's clock was refused: signed anew and sent again at once, once per call. */
  resignCodes: ReadonlySet<string>;
  /** An unreadable answer with at least this status is a transient error page (a proxy's 502). */
  unreadableRetryFromStatus: number;
  /** Socket failures that prove the request never reached the server: retried, nothing committed. */
  notSentSocketCodes: ReadonlySet<string>;
  /** Socket failures where our side refused to send (pool closed, an invalid header value): final. */
  refusedToSendSocketCodes: ReadonlySet<string>;
}

/** CloudIdentity's policy; the numbers are the client's options. */
export function retryPolicy(limits: {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}): RetryPolicy {
  return {
    ...limits,
    finalCodes: new Set([ErrorCode.ReachedQuotaLimit]),
    refusedCodes: new Set([ErrorCode.FlowLimitExceeded, ErrorCode.ConcurrentException]),
    refusedStatuses: new Set([429]),
    serverErrorCodes: new Set([
      ErrorCode.InternalError,
      ErrorCode.InternalServiceError,
      ErrorCode.ServiceUnavailableTemp,
      ErrorCode.InternalServiceTimeout,
    ]),
    serverErrorStatuses: new Set([500, 502, 503, 504]),
    resignCodes: new Set([ErrorCode.InvalidTimestamp]),
    unreadableRetryFromStatus: 500,
    notSentSocketCodes: new Set([
      'ECONNREFUSED',
      'ENOTFOUND',
      'EAI_AGAIN',
      'EHOSTUNREACH',
      'UND_ERR_CONNECT_TIMEOUT',
    ]),
    refusedToSendSocketCodes: new Set(['UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'UND_ERR_INVALID_ARG']),
  };
}

export interface RetryState {
  /** The attempt that just failed, from 1. */
  attempt: number;
  /** Whether this call has already been signed anew once. */
  resigned: boolean;
  /** Milliseconds left before the call's deadline. */
  remainingMs: number;
  /** A number in [0, 1) for the jitter. */
  random: number;
}

export type RetryDecision =
  | {
      retry: true;
      delayMs: number;
      /** Sign anew (a fresh X-Date) before sending again. */
      resign: boolean;
      /** The failed attempt may have been applied upstream. */
      mayHaveCommitted: boolean;
    }
  | {
      retry: false;
      /** final: the failure is not transient; attempts: none left; deadline: the wait would pass it. */
      why: 'final' | 'attempts' | 'deadline';
    };

interface Transience {
  transient: boolean;
  mayHaveCommitted: boolean;
  minDelayMs?: number;
}

function transience(policy: RetryPolicy, f: AttemptFailure): Transience {
  switch (f.type) {
    case 'api': {
      const minDelayMs = f.retryAfterSeconds !== undefined ? f.retryAfterSeconds * 1000 : undefined;
      if (policy.finalCodes.has(f.code)) return { transient: false, mayHaveCommitted: false };
      if (policy.refusedCodes.has(f.code) || policy.refusedStatuses.has(f.httpStatus))
        return { transient: true, mayHaveCommitted: false, minDelayMs };
      if (policy.serverErrorStatuses.has(f.httpStatus) || policy.serverErrorCodes.has(f.code))
        return { transient: true, mayHaveCommitted: true, minDelayMs };
      return { transient: false, mayHaveCommitted: false };
    }
    case 'timeout':
    case 'cut-off':
      return { transient: true, mayHaveCommitted: true };
    case 'deadline':
      return { transient: false, mayHaveCommitted: true };
    case 'unreadable':
      return { transient: f.httpStatus >= policy.unreadableRetryFromStatus, mayHaveCommitted: true };
    case 'socket':
      if (policy.refusedToSendSocketCodes.has(f.code)) return { transient: false, mayHaveCommitted: false };
      return { transient: true, mayHaveCommitted: !policy.notSentSocketCodes.has(f.code) };
  }
}

/** Retry after `delayMs`, or give up: the one place that decides. */
export function decideRetry(policy: RetryPolicy, failure: AttemptFailure, state: RetryState): RetryDecision {
  const t = transience(policy, failure);
  let delayMs: number;
  let resign = false;
  if (failure.type === 'api' && policy.resignCodes.has(failure.code)) {
    // The request may just have waited too long somewhere: once more with a fresh X-Date, at once.
    if (state.resigned) return { retry: false, why: 'final' };
    resign = true;
    delayMs = 0;
  } else if (t.transient) {
    const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (state.attempt - 1));
    // Retry-After is a floor, even above the cap.
    delayMs = Math.max(state.random * cap, t.minDelayMs ?? 0);
  } else {
    return { retry: false, why: 'final' };
  }
  if (state.attempt >= policy.maxAttempts) return { retry: false, why: 'attempts' };
  // Sleeping would end past the deadline: give up now with the real reason (it may carry Retry-After).
  if (delayMs >= state.remainingMs) return { retry: false, why: 'deadline' };
  return { retry: true, delayMs, resign, mayHaveCommitted: t.mayHaveCommitted };
}
