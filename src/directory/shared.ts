// Small rules the user and group directories share.
import { followedUncertainAttempt } from '../volcengine/client.js';
import {
  ErrorCode as UpstreamCode,
  VolcengineApiError,
  VolcengineTransportError,
} from '../volcengine/errors.js';

/** SCIM ids the bridge can have issued (UUIDs, CloudIdentity ids): anything else is 404 without a call. */
export const SAFE_ID = /^[A-Za-z0-9._~-]{1,128}$/;

/** caseExact attributes (RFC 7643 §3.1), lower-cased as the filter matcher looks them up. */
export const CASE_EXACT: ReadonlySet<string> = new Set(['id', 'externalid']);

export const isCode = (e: unknown, code: string) => e instanceof VolcengineApiError && e.code === code;

/**
 * A failed mutation that may still have happened upstream: an answer lost, or a retry failing after
 * an attempt whose answer was lost (e.g. GroupNameAlreadyExists caused by that very attempt).
 */
export function mayHaveCommitted(e: unknown): boolean {
  if (e instanceof VolcengineTransportError || followedUncertainAttempt(e)) return true;
  return (
    e instanceof VolcengineApiError &&
    (e.httpStatus >= 500 || e.httpStatus === 429 || e.code === UpstreamCode.ConcurrentException)
  );
}

/** If-Match against a weak ETag: `*`, or any listed tag equal to the version (weakness ignored). */
export function etagMatches(header: string, version: string): boolean {
  if (header.trim() === '*') return true;
  const strip = (v: string) => v.trim().replace(/^W\//, '');
  return header.split(',').some((candidate) => strip(candidate) === strip(version));
}
