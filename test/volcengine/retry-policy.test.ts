// The retry decision as a table: failure × attempt → retry after N ms (and whether the failed attempt
// may have committed), or give up and why.
import { describe, expect, it } from 'vitest';
import {
  type AttemptFailure,
  decideRetry,
  type RetryDecision,
  type RetryState,
  retryPolicy,
} from '../../src/volcengine/retry-policy.js';

const policy = retryPolicy({ maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1_000 });
const first: RetryState = { attempt: 1, resigned: false, remainingMs: 60_000, random: 0.5 };
const api = (code: string, httpStatus: number, retryAfterSeconds?: number): AttemptFailure => ({
  type: 'api',
  code,
  httpStatus,
  retryAfterSeconds,
});
const retry = (delayMs: number, mayHaveCommitted: boolean, resign = false): RetryDecision => ({
  retry: true,
  delayMs,
  resign,
  mayHaveCommitted,
});
const stop = (why: 'final' | 'attempts' | 'deadline'): RetryDecision => ({ retry: false, why });

describe('decideRetry', () => {
  // First attempt, random 0.5: the full-jitter delay is 0.5 × min(1000, 100 × 2^0) = 50 ms.
  const table: Array<[string, AttemptFailure, RetryDecision]> = [
    ['FlowLimitExceeded: refused, nothing committed', api('FlowLimitExceeded', 429), retry(50, false)],
    ['any 429 is throttling', api('SomethingNew', 429), retry(50, false)],
    ['ConcurrentException: refused, nothing committed', api('ConcurrentException', 400), retry(50, false)],
    ['InternalError 500: may have committed', api('InternalError', 500), retry(50, true)],
    ['InternalServiceError in a 200 body', api('InternalServiceError', 200), retry(50, true)],
    ['ServiceUnavailableTemp', api('ServiceUnavailableTemp', 503), retry(50, true)],
    ['InternalServiceTimeout', api('InternalServiceTimeout', 504), retry(50, true)],
    ['any 502 from CloudIdentity', api('BadGateway', 502), retry(50, true)],
    ['a per-attempt timeout', { type: 'timeout' }, retry(50, true)],
    ['a body cut off mid-transfer', { type: 'cut-off' }, retry(50, true)],
    ['an HTML 502 page from a proxy', { type: 'unreadable', httpStatus: 502 }, retry(50, true)],
    ['a connection reset', { type: 'socket', code: 'ECONNRESET' }, retry(50, true)],
    ['a socket error without a code', { type: 'socket', code: '' }, retry(50, true)],
    ['a refused connection sent nothing', { type: 'socket', code: 'ECONNREFUSED' }, retry(50, false)],
    ['a connect timeout sent nothing', { type: 'socket', code: 'UND_ERR_CONNECT_TIMEOUT' }, retry(50, false)],
    ['InvalidTimestamp: signed anew at once', api('InvalidTimestamp', 400), retry(0, false, true)],
    ['ReachedQuotaLimit, though a 429', api('ReachedQuotaLimit', 429), stop('final')],
    ['UserNameAlreadyExists', api('UserNameAlreadyExists', 400), stop('final')],
    ['InvalidParam', api('InvalidParam', 400), stop('final')],
    ['SignatureDoesNotMatch', api('SignatureDoesNotMatch', 401), stop('final')],
    ['a 501 is not transient', api('NotImplemented', 501), stop('final')],
    ['an unreadable 200', { type: 'unreadable', httpStatus: 200 }, stop('final')],
    ['an unreadable 404', { type: 'unreadable', httpStatus: 404 }, stop('final')],
    ['the deadline', { type: 'deadline' }, stop('final')],
    ['our side refused to send', { type: 'socket', code: 'UND_ERR_INVALID_ARG' }, stop('final')],
    ['the pool is closed', { type: 'socket', code: 'UND_ERR_CLOSED' }, stop('final')],
  ];
  it.each(table)('%s', (_name, failure, expected) => {
    expect(decideRetry(policy, failure, first)).toEqual(expected);
  });

  it('honours Retry-After as the minimum delay, even above the backoff cap', () => {
    expect(decideRetry(policy, api('FlowLimitExceeded', 429, 2), first)).toEqual(retry(2_000, false));
    expect(decideRetry(policy, api('ServiceUnavailableTemp', 503, 3), first)).toEqual(retry(3_000, true));
    // A Retry-After shorter than the jitter does not shorten it.
    expect(decideRetry(policy, api('FlowLimitExceeded', 429, 0), { ...first, random: 0.9 })).toEqual(
      retry(90, false),
    );
  });

  it('gives up when the wait would reach the deadline, with the reason', () => {
    const throttled = api('FlowLimitExceeded', 429, 5);
    expect(decideRetry(policy, throttled, { ...first, remainingMs: 5_000 })).toEqual(stop('deadline'));
    expect(decideRetry(policy, throttled, { ...first, remainingMs: 5_001 })).toEqual(retry(5_000, false));
    // Even a re-sign (no wait) needs time left.
    expect(decideRetry(policy, api('InvalidTimestamp', 400), { ...first, remainingMs: 0 })).toEqual(
      stop('deadline'),
    );
  });

  it('stops when the attempts are used up', () => {
    const f = api('InternalError', 500);
    expect(decideRetry(policy, f, { ...first, attempt: 3 })).toMatchObject({ retry: true });
    expect(decideRetry(policy, f, { ...first, attempt: 4 })).toEqual(stop('attempts'));
    const once = retryPolicy({ maxAttempts: 1, baseDelayMs: 100, maxDelayMs: 1_000 });
    expect(decideRetry(once, { type: 'timeout' }, first)).toEqual(stop('attempts'));
  });

  it('re-signs once per call', () => {
    expect(decideRetry(policy, api('InvalidTimestamp', 400), { ...first, resigned: true })).toEqual(
      stop('final'),
    );
  });

  it('doubles the backoff per attempt up to its cap', () => {
    const f: AttemptFailure = { type: 'timeout' };
    const delays = [1, 2, 3, 4, 5, 6].map((attempt) => {
      const d = decideRetry({ ...policy, maxAttempts: 10 }, f, { ...first, attempt, random: 0.999 });
      return d.retry ? Math.round(d.delayMs) : undefined;
    });
    expect(delays).toEqual([100, 200, 400, 799, 999, 999]);
    const none = decideRetry(policy, f, { ...first, attempt: 3, random: 0 });
    expect(none).toEqual(retry(0, true));
  });
});
