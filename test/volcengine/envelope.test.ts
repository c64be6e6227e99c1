// The response envelope: one HTTP answer (status, headers, body text) into a Result or a typed error.
import { describe, expect, it } from 'vitest';
import { parseResponse, parseRetryAfter } from '../../src/volcengine/envelope.js';
import { type VolcengineApiError, VolcengineTransportError } from '../../src/volcengine/errors.js';

describe('parseResponse and parseRetryAfter', () => {
  it('parses envelopes directly', () => {
    expect(
      parseResponse('GetUser', 200, {}, '{"ResponseMetadata":{"RequestId":"r1"},"Result":{"a":1}}'),
    ).toEqual({
      ok: true,
      result: { a: 1 },
      requestId: 'r1',
    });
    // An action without output may omit Result.
    expect(parseResponse('DeleteUser', 200, {}, '{"ResponseMetadata":{"RequestId":"r2"}}')).toMatchObject({
      ok: true,
      result: {},
    });
    const e = parseResponse(
      'X',
      429,
      { 'retry-after': '7' },
      '{"ResponseMetadata":{"Error":{"Code":"FlowLimitExceeded"}}}',
    );
    expect(e.ok).toBe(false);
    if (!e.ok) expect((e.error as VolcengineApiError).retryAfterSeconds).toBe(7);
    const m = parseResponse('X', 500, {}, '{"ResponseMetadata":{"RequestId":"r3"}}');
    expect(m.ok === false && m.error instanceof VolcengineTransportError && m.error.kind).toBe('malformed');
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3);
    expect(parseRetryAfter(['2', '9'])).toBe(2);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.parse('2025-03-09T14:48:24Z');
    expect(parseRetryAfter('Sun, 09 Mar 2025 14:48:34 GMT', now)).toBe(10);
    expect(parseRetryAfter('Sun, 09 Mar 2025 14:48:00 GMT', now)).toBe(0);
  });
});
