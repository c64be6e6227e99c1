import { describe, expect, it } from 'vitest';
import {
  DirectoryError,
  DirectoryUnavailableError,
  InconsistentStateError,
  InvalidValueError,
  isDecided,
  NotFoundError,
  PreconditionFailedError,
  ResourceBusyError,
  TooManyError,
  UniquenessError,
} from '../../src/directory/errors.js';
import { DIRECTORY_ERRORS, STORE_ERRORS, toScimError } from '../../src/scim-http/errors.js';
import {
  StoreBindingError,
  StoreLockTimeoutError,
  StoreSetupError,
  StoreUnavailableError,
} from '../../src/store/errors.js';
import { StoreStaleError } from '../../src/store/types.js';
import { CREDENTIAL_CODES, VolcengineApiError } from '../../src/volcengine/errors.js';

// Every error the layers below the HTTP surface throw, with the SCIM answer it must produce.
const directory: Array<[DirectoryError, string, number, string | undefined, number | undefined, boolean]> = [
  [new NotFoundError('User u1 not found'), 'NotFoundError', 404, undefined, undefined, true],
  [
    new UniquenessError("userName 'a' is already taken"),
    'UniquenessError',
    409,
    'uniqueness',
    undefined,
    true,
  ],
  [
    new PreconditionFailedError('If-Match W/"1" does not match'),
    'PreconditionFailedError',
    412,
    undefined,
    undefined,
    true,
  ],
  [
    new ResourceBusyError('user:u1', 'another request is still changing this user'),
    'ResourceBusyError',
    503,
    undefined,
    1,
    false,
  ],
  [
    new TooManyError('this filter needs a scan of 9 users (limit 5)'),
    'TooManyError',
    400,
    'tooMany',
    undefined,
    true,
  ],
  [new InvalidValueError('userName is required'), 'InvalidValueError', 400, 'invalidValue', undefined, true],
  [
    new DirectoryUnavailableError('CloudIdentity is not available'),
    'DirectoryUnavailableError',
    503,
    undefined,
    10,
    false,
  ],
  [
    new InconsistentStateError('the user record vanished'),
    'InconsistentStateError',
    500,
    undefined,
    undefined,
    false,
  ],
];

describe('the error table in scim-http/errors.ts', () => {
  it.each(directory)(
    '%s → its status, scimType and Retry-After, with its message as detail',
    (error, name, status, scimType, retryAfter, decided) => {
      expect(error).toBeInstanceOf(DirectoryError);
      expect(error.name).toBe(name);
      expect(isDecided(error)).toBe(decided);
      const answer = toScimError(error);
      expect(answer).toMatchObject({ status, scimType, retryAfter, detail: error.message });
    },
  );

  it('has one row per directory error code, and every code has a class', () => {
    const codes = directory.map(([e]) => e.code).sort();
    expect(new Set(codes).size).toBe(codes.length);
    expect(Object.keys(DIRECTORY_ERRORS).sort()).toEqual(codes);
  });

  it.each([
    [new StoreUnavailableError('SQLITE_FULL'), 503, 10, /cannot reach its store/],
    [new StoreLockTimeoutError('group:g1'), 503, 1, /changing this group; nothing was changed/],
    [new StoreStaleError('u1'), 412, undefined, /changed by another request meanwhile/],
    [new StoreSetupError('DATA_DIR', 'DATA_DIR /data is not writable'), 500, undefined, /^internal error/],
    [new StoreBindingError('a', 'b', 'bound to another account'), 500, undefined, /^internal error/],
  ])('store error %s → %i, with a client sentence of its own', (error, status, retryAfter, detail) => {
    const answer = toScimError(error);
    expect(answer).toMatchObject({ status, retryAfter, scimType: undefined });
    expect(answer.detail).toMatch(detail);
    expect(answer.detail).not.toContain(error.message);
    expect(Object.keys(STORE_ERRORS)).toContain(error.code);
  });

  it('a directory error never carries an HTTP status of its own', () => {
    for (const [error] of directory) {
      expect(error).not.toHaveProperty('status');
      expect(error.code).toMatch(/^[A-Z_]+$/);
    }
  });

  it('answers every credential code with 502 naming the RequestId, never 401', () => {
    for (const code of CREDENTIAL_CODES) {
      const answer = toScimError(new VolcengineApiError('ListUsers', code, 401, 'req-9', 'no'));
      expect(answer.status).toBe(502);
      expect(answer.detail).toBe(
        "CloudIdentity refused the bridge's credentials (CloudIdentity RequestId req-9)",
      );
    }
  });
});
