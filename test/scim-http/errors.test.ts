import SCIMMY from 'scimmy';
import { describe, expect, it } from 'vitest';
import { toScimError } from '../../src/scim-http/errors.js';
import { ERROR_SCHEMA, ScimError } from '../../src/scim-model/scim-error.js';
import { mapSqliteError } from '../../src/store/sqlite-store.js';
import {
  isCredentialProblem,
  VolcengineApiError,
  VolcengineTransportError,
} from '../../src/volcengine/errors.js';

const api = (code: string, httpStatus: number, message = 'upstream says no', retryAfter?: number) =>
  new VolcengineApiError('CreateUser', code, httpStatus, 'req-123', message, retryAfter);

describe('toScimError: DESIGN.md §3', () => {
  it.each([
    ['UserNameAlreadyExists', 404, 409, 'uniqueness', undefined],
    ['GroupNameAlreadyExists', 409, 409, 'uniqueness', undefined],
    ['InvalidParam', 400, 400, 'invalidValue', undefined],
    ['ParamMissing', 400, 400, 'invalidValue', undefined],
    ['MissingParameter', 400, 400, 'invalidValue', undefined],
    ['ParamIncludeSensitiveWord', 400, 400, 'invalidValue', undefined],
    ['PermissionError', 400, 403, undefined, undefined],
    ['AccessDenied', 403, 403, undefined, undefined],
    ['LackPolicy', 403, 403, undefined, undefined],
    ['ReachedQuotaLimit', 429, 403, undefined, undefined],
    ['ServiceStatusException', 400, 503, undefined, 'number'],
    ['ConcurrentException', 400, 503, undefined, 'number'],
    ['FlowLimitExceeded', 429, 429, undefined, 'number'],
    ['InternalError', 500, 502, undefined, undefined],
    ['ServiceUnavailableTemp', 503, 502, undefined, undefined],
    ['InternalServiceTimeout', 504, 504, undefined, undefined],
    ['SignatureDoesNotMatch', 401, 502, undefined, undefined],
    ['InvalidAccessKey', 401, 502, undefined, undefined],
    ['InvalidSecretToken', 401, 502, undefined, undefined],
    ['MissingAuthenticationToken', 401, 502, undefined, undefined],
    ['InvalidTimestamp', 403, 502, undefined, undefined],
    ['UserNotFound', 404, 404, undefined, undefined],
    ['UserGroupNotFound', 404, 404, undefined, undefined],
    ['SomethingNew', 400, 502, undefined, undefined],
  ])('%s (HTTP %i) → %i %s', (code, httpStatus, status, scimType, retryAfter) => {
    const error = toScimError(api(code, httpStatus, 'The parameter Email[x] is invalid'));
    expect(error.status).toBe(status);
    expect(error.scimType).toBe(scimType);
    if (retryAfter) expect(error.retryAfter).toBeGreaterThan(0);
    else expect(error.retryAfter).toBeUndefined();
    expect(error.detail.length).toBeGreaterThan(0);
    const body = error.toBody();
    expect(body.schemas).toEqual([ERROR_SCHEMA]);
    expect(body.status).toBe(String(status));
  });

  it('never answers 401 for the bridge credentials, and flags them as an operator problem', () => {
    for (const code of ['SignatureDoesNotMatch', 'InvalidAccessKey', 'InvalidTimestamp']) {
      expect(isCredentialProblem(api(code, 401))).toBe(true);
      expect(toScimError(api(code, 401)).status).not.toBe(401);
    }
    expect(isCredentialProblem(api('InvalidParam', 400))).toBe(false);
    expect(isCredentialProblem(new Error('x'))).toBe(false);
  });

  it('invalidValue details name the parameter; permission details name the action', () => {
    expect(toScimError(api('InvalidParam', 400, 'The parameter Phone[123] is invalid')).detail).toContain(
      'Phone',
    );
    expect(toScimError(api('AccessDenied', 403)).detail).toContain('CreateUser');
    expect(
      toScimError(api('ReachedQuotaLimit', 429, 'The count of user is exceeded quota limit')).detail,
    ).toContain('user');
  });

  it('a failing embedded store (disk full, I/O error, locked) is 503 with Retry-After, and says nothing of paths', () => {
    for (const code of ['SQLITE_FULL', 'SQLITE_IOERR_FSYNC', 'SQLITE_BUSY', 'SQLITE_READONLY_DBMOVED']) {
      const failure = Object.assign(new Error(`disk I/O error /var/lib/bridge/bridge.sqlite`), { code });
      const err = toScimError(mapSqliteError(failure));
      expect(err.status).toBe(503);
      expect(err.retryAfter).toBeGreaterThan(0);
      expect(err.detail).not.toMatch(/SQLITE|bridge\.sqlite|\//);
    }
  });

  it('keeps the upstream Retry-After for throttling', () => {
    expect(toScimError(api('FlowLimitExceeded', 429, 'slow down', 7)).retryAfter).toBe(7);
  });

  it('maps transport failures: deadline and timeout → 504, others → 502', () => {
    expect(toScimError(new VolcengineTransportError('GetUser', 'deadline', 'late')).status).toBe(504);
    expect(toScimError(new VolcengineTransportError('GetUser', 'timeout', 'slow')).status).toBe(504);
    expect(toScimError(new VolcengineTransportError('GetUser', 'network', 'ECONNRESET')).status).toBe(502);
    expect(toScimError(new VolcengineTransportError('GetUser', 'malformed', '<html>')).status).toBe(502);
  });

  it('passes ScimErrors and scimmy errors through; anything else is a 500 without internals', () => {
    const own = new ScimError(412, undefined, 'stale');
    expect(toScimError(own)).toBe(own);
    const scimmy = toScimError(new SCIMMY.Types.Error(400, 'invalidFilter', 'bad filter'));
    expect(scimmy).toMatchObject({ status: 400, scimType: 'invalidFilter', detail: 'bad filter' });
    const internal = toScimError(new TypeError('secret internal detail at /src/x.ts:1'));
    expect(internal.status).toBe(500);
    expect(internal.detail).not.toContain('secret');
  });

  it('formats the error body with status as a string and no scimType when undefined', () => {
    expect(new ScimError(429, undefined, 'later', 5).toBody()).toEqual({
      schemas: [ERROR_SCHEMA],
      status: '429',
      detail: 'later',
    });
  });
});
