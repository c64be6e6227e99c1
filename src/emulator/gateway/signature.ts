import { createHash, createHmac } from 'node:crypto';

// The emulator's own implementation of Volcengine HMAC-SHA256 signing (reference §7.1). It deliberately
// shares nothing with the bridge's signer so that a bug there shows up as SignatureDoesNotMatch here.

export const ALGORITHM = 'HMAC-SHA256';
export const EMPTY_BODY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** kSigning = HMAC(HMAC(HMAC(HMAC(secret, shortDate), region), service), "request"). */
export function deriveSigningKey(
  secretKey: string,
  shortDate: string,
  region: string,
  service: string,
): Buffer {
  const kDate = hmac(Buffer.from(secretKey, 'utf8'), shortDate);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  return hmac(kService, 'request');
}

/** Percent-encodes everything outside RFC 3986 unreserved characters, with uppercase hex. */
export function rfc3986Encode(s: string): string {
  // encodeURIComponent leaves !'()* alone; the signing spec encodes them.
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * Canonical query string from the raw query as received. Values are decoded first ('+' means space,
 * as form encoding does) and re-encoded, so clients that send `%20` and clients that send `+` for a
 * space both verify. Pairs are sorted by encoded key, then encoded value.
 */
export function canonicalQueryString(rawQuery: string): string {
  const pairs: [string, string][] = [];
  for (const [k, v] of new URLSearchParams(rawQuery)) pairs.push([rfc3986Encode(k), rfc3986Encode(v)]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

export interface CanonicalRequestInput {
  method: string;
  /** Always '/' for CloudIdentity. */
  path: string;
  /** Raw query string without the leading '?'. */
  rawQuery: string;
  /** Lowercase signed header names in the order the client listed them. */
  signedHeaders: readonly string[];
  /** Looks up a (lowercase) header value as it should enter the canonical request. */
  headerValue: (name: string) => string;
  payloadHash: string;
}

export function canonicalRequest(input: CanonicalRequestInput): string {
  let headers = '';
  for (const name of input.signedHeaders) headers += `${name}:${input.headerValue(name).trim()}\n`;
  return [
    input.method.toUpperCase(),
    canonicalUri(input.path),
    canonicalQueryString(input.rawQuery),
    headers,
    input.signedHeaders.join(';'),
    input.payloadHash,
  ].join('\n');
}

function canonicalUri(path: string): string {
  if (path === '' || path === '/') return '/';
  return path
    .split('/')
    .map((seg) => rfc3986Encode(safeDecode(seg)))
    .join('/');
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function stringToSign(xDate: string, credentialScope: string, canonical: string): string {
  return [ALGORITHM, xDate, credentialScope, sha256Hex(canonical)].join('\n');
}

export function signatureHex(signingKey: Buffer, toSign: string): string {
  return createHmac('sha256', signingKey).update(toSign, 'utf8').digest('hex');
}

/** Host as it enters the canonical request: default ports are stripped (GOSIGN, GO and PY do). */
export function canonicalHost(host: string): string {
  return host.replace(/:(80|443)$/, '');
}
