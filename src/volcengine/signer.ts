// Volcengine OpenAPI request signing (HMAC-SHA256), as described in
// shared/reference/volcengine-cloudidentity.md §7. Pure functions: no I/O, no clock (the derived
// signing key is memoised, which changes no result).
import { createHash, createHmac } from 'node:crypto';

export const SIGNING_ALGORITHM = 'HMAC-SHA256';

/** What the Go and Python SDKs sign; `x-security-token` is added when a session token is used. */
export const DEFAULT_SIGNED_HEADERS: readonly string[] = [
  'content-type',
  'host',
  'x-content-sha256',
  'x-date',
];

const UNRESERVED = /^[A-Za-z0-9\-_.~]$/;
const ALL_UNRESERVED = /^[A-Za-z0-9\-_.~]*$/;

/** RFC 3986 encoding: unreserved characters kept, every other UTF-8 byte as uppercase `%XX`. */
export function percentEncode(s: string): string {
  // Fast path: Action, Version and typical path segments need no encoding at all.
  if (ALL_UNRESERVED.test(s)) return s;
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && UNRESERVED.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Keys sorted by the byte order of their UTF-8 form (not UTF-16 code units), `k=` for empty values. */
export function canonicalQueryString(query: Readonly<Record<string, string>>): string {
  return Object.keys(query)
    .map((k) => ({ k, bytes: Buffer.from(k, 'utf8') }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map(({ k }) => `${percentEncode(k)}=${percentEncode(query[k] ?? '')}`)
    .join('&');
}

/** Each path segment percent-encoded; an empty path is `/`. */
export function canonicalUri(path: string): string {
  if (path === '' || path === '/') return '/';
  return path.split('/').map(percentEncode).join('/');
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Uint8Array, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** kSigning = HMAC(HMAC(HMAC(HMAC(secret, shortDate), region), service), "request"). */
export function deriveSigningKey(secret: string, shortDate: string, region: string, service: string): Buffer {
  const kDate = hmac(Buffer.from(secret, 'utf8'), shortDate);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  return hmac(kService, 'request');
}

/**
 * The signing key depends only on (secret, day, region, service): four HMACs that every request of
 * the same day would repeat. The last derived key is kept (one entry: a bridge signs with one
 * credential) and re-derived whenever any input differs, so the result is always exactly
 * deriveSigningKey's.
 */
let lastKey: { secret: string; shortDate: string; region: string; service: string; key: Buffer } | undefined;

function cachedSigningKey(secret: string, shortDate: string, region: string, service: string): Buffer {
  const k = lastKey;
  if (k && k.secret === secret && k.shortDate === shortDate && k.region === region && k.service === service) {
    return k.key;
  }
  const key = deriveSigningKey(secret, shortDate, region, service);
  lastKey = { secret, shortDate, region, service, key };
  return key;
}

/** `YYYYMMDD'T'HHMMSS'Z'` in UTC. */
export function formatXDate(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/** Host without a default port (`:80`/`:443`), as the Go and Python signers sign it. */
export function normalizeHost(host: string): string {
  return host.trim().replace(/:(80|443)$/, '');
}

export interface SignRequestInput {
  method: string;
  /** Request path without the query, e.g. `/`. */
  path: string;
  query: Readonly<Record<string, string>>;
  /** Headers that will be sent (at least `Host`; `Content-Type` when there is a body). Any case. */
  headers: Readonly<Record<string, string>>;
  /** The exact body bytes that will be sent (empty string for none). */
  body: string | Uint8Array;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region: string;
  service: string;
  date: Date;
  /**
   * Lowercase names to sign. Default: DEFAULT_SIGNED_HEADERS that are present, plus `x-security-token`
   * with a session token. Explicitly listed names must be present.
   */
  signedHeaderNames?: readonly string[];
}

export interface SignRequestResult {
  /** Headers the caller must add to the request (wire case). */
  headers: Record<string, string>;
  xDate: string;
  shortDate: string;
  payloadHash: string;
  canonicalQueryString: string;
  signedHeaders: string;
  canonicalRequest: string;
  credentialScope: string;
  stringToSign: string;
  signature: string;
  authorization: string;
}

export function signRequest(input: SignRequestInput): SignRequestResult {
  const xDate = formatXDate(input.date);
  const shortDate = xDate.slice(0, 8);
  const payloadHash = sha256Hex(input.body);

  const added: Record<string, string> = { 'X-Date': xDate, 'X-Content-Sha256': payloadHash };
  if (input.sessionToken) added['X-Security-Token'] = input.sessionToken;

  // Lowercased view of everything that goes on the wire; the signer's own headers win.
  const all = new Map<string, string>();
  for (const [name, value] of Object.entries({ ...input.headers, ...added })) {
    const lower = name.toLowerCase();
    all.set(lower, lower === 'host' ? normalizeHost(value) : value.trim());
  }

  let names: string[];
  if (input.signedHeaderNames) {
    names = input.signedHeaderNames.map((n) => n.toLowerCase());
    const missing = names.filter((n) => !all.has(n));
    if (missing.length > 0)
      throw new Error(`signRequest: signed header(s) not present: ${missing.join(', ')}`);
  } else {
    // The default set always includes host: an unsigned Host would let the request be replayed elsewhere.
    if (!all.has('host')) throw new Error('signRequest: a Host header is required');
    names = DEFAULT_SIGNED_HEADERS.filter((n) => all.has(n));
    if (input.sessionToken) names.push('x-security-token');
  }
  names = [...new Set(names)].sort();

  const signedHeaders = names.join(';');
  const canonicalHeaders = names.map((n) => `${n}:${all.get(n)}\n`).join('');
  const cqs = canonicalQueryString(input.query);
  const canonicalRequest = [
    input.method.toUpperCase(),
    canonicalUri(input.path),
    cqs,
    canonicalHeaders,
    signedHeaders,
    payloadHash,
  ].join('\n');

  const credentialScope = `${shortDate}/${input.region}/${input.service}/request`;
  const stringToSign = [SIGNING_ALGORITHM, xDate, credentialScope, sha256Hex(canonicalRequest)].join('\n');
  const key = cachedSigningKey(input.secretAccessKey, shortDate, input.region, input.service);
  const signature = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  const authorization =
    `${SIGNING_ALGORITHM} Credential=${input.accessKeyId}/${credentialScope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;

  return {
    headers: { ...added, Authorization: authorization },
    xDate,
    shortDate,
    payloadHash,
    canonicalQueryString: cqs,
    signedHeaders,
    canonicalRequest,
    credentialScope,
    stringToSign,
    signature,
    authorization,
  };
}
