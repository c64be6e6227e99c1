import { describe, expect, it } from 'vitest';
import {
  conflict,
  invalidValue,
  isDecided,
  notFound,
  preconditionFailed,
  ResourceBusyError,
  tooMany,
} from '../../src/directory/errors.js';
import { CASE_EXACT, isCode, mayHaveCommitted, SAFE_ID } from '../../src/directory/shared.js';
import { VolcengineApiError, VolcengineTransportError } from '../../src/volcengine/errors.js';

const apiError = (code: string, httpStatus: number) =>
  new VolcengineApiError('CreateUser', code, httpStatus, 'req-1', 'message');

describe('mayHaveCommitted', () => {
  it('a lost answer, a 5xx, throttling or a concurrent change may hide a committed write', () => {
    expect(mayHaveCommitted(new VolcengineTransportError('CreateUser', 'network', 'socket hang up'))).toBe(
      true,
    );
    expect(mayHaveCommitted(apiError('InternalError', 500))).toBe(true);
    expect(mayHaveCommitted(apiError('FlowLimitExceeded', 429))).toBe(true);
    expect(mayHaveCommitted(apiError('ConcurrentException', 400))).toBe(true);
  });

  it('a plain refusal did not commit, and neither did anything that is not an upstream failure', () => {
    expect(mayHaveCommitted(apiError('UserNameAlreadyExists', 400))).toBe(false);
    expect(mayHaveCommitted(apiError('InvalidParameter', 400))).toBe(false);
    expect(mayHaveCommitted(new Error('store down'))).toBe(false);
    expect(mayHaveCommitted(undefined)).toBe(false);
  });
});

describe('isCode', () => {
  it('matches upstream errors by code only', () => {
    expect(isCode(apiError('UserNotFound', 404), 'UserNotFound')).toBe(true);
    expect(isCode(apiError('UserNotFound', 404), 'UserGroupNotFound')).toBe(false);
    expect(isCode(Object.assign(new Error('x'), { code: 'UserNotFound' }), 'UserNotFound')).toBe(false);
  });
});

describe('SAFE_ID and CASE_EXACT', () => {
  it('ids the bridge can have issued pass; anything else is a 404 without a call', () => {
    for (const id of ['0f8c2b9e-5a6d-4c1e-9d1b-2a3f4e5d6c7b', '7340c4a0b1', 'a.b_c~d-e'])
      expect(SAFE_ID.test(id)).toBe(true);
    for (const id of ['', '../x', 'a/b', 'a b', 'ü', 'x'.repeat(129), 'a%2Fb'])
      expect(SAFE_ID.test(id)).toBe(false);
  });

  it('id and externalId compare exactly (lower-cased keys, as the matcher looks them up)', () => {
    expect([...CASE_EXACT].sort()).toEqual(['externalid', 'id']);
  });
});

describe('isDecided', () => {
  it('refusals decide an operation; a busy resource or an outage does not; other errors do not', () => {
    for (const e of [notFound('x'), conflict('x'), preconditionFailed('x'), tooMany('x'), invalidValue('x')])
      expect(isDecided(e)).toBe(true);
    expect(isDecided(new ResourceBusyError('user:a', 'busy'))).toBe(false);
    expect(isDecided(new Error('x'))).toBe(false);
    expect(isDecided(apiError('InternalError', 500))).toBe(false);
  });
});
