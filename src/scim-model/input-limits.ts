import { badRequest } from './scim-error.js';

// Bounds on what one request may make the bridge keep or do, checked before any upstream call.

/**
 * Largest record the bridge keeps for one user or group: its SCIM attributes as JSON. A full user
 * from Entra or Okta (core, enterprise extension, a few emails, phones and addresses) is 1–4 KiB;
 * 64 KiB leaves room for 16× that, and keeps 100,000 users under 6.4 GB of store in the worst case
 * (without a limit, a 1 MiB body per user made 150 users take 1.1 GB).
 */
export const MAX_RECORD_BYTES = 64 * 1024;

/** Default for MAX_MEMBERS_PER_REQUEST (see config.ts for why). */
export const DEFAULT_MAX_MEMBERS_PER_REQUEST = 1000;

export function checkRecordSize(kind: 'user' | 'group', record: unknown): void {
  const bytes = Buffer.byteLength(JSON.stringify(record) ?? '');
  if (bytes > MAX_RECORD_BYTES) {
    throw badRequest(
      'invalidValue',
      `the ${kind}'s attributes take ${bytes} bytes as JSON; the bridge keeps at most ${MAX_RECORD_BYTES} bytes (64 KiB) per ${kind}`,
    );
  }
}

/** A 400 when one request names more members than MAX_MEMBERS_PER_REQUEST. */
export function checkMemberCount(count: number, max: number): void {
  if (count > max) {
    throw badRequest(
      'invalidValue',
      `members: ${count} member values in one request; at most ${max} are accepted per request (MAX_MEMBERS_PER_REQUEST): send them in several PATCH requests`,
    );
  }
}
