import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { parseXDate } from '../clock.js';
import { gatewayErrors } from '../errors.js';
import {
  ALGORITHM,
  canonicalHost,
  canonicalRequest,
  deriveSigningKey,
  sha256Hex,
  signatureHex,
  stringToSign,
} from './signature.js';

export const SERVICE = 'cloudidentity';

export interface AuthConfig {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  maxSkewSeconds: number;
  now: () => number;
}

export interface SignedRequest {
  method: string;
  path: string;
  rawQuery: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface AuthResult {
  accessKeyId: string;
  region: string;
  /** Sent X-Security-Token, signed or not (JAVA sends it unsigned); never validated. */
  securityToken?: string;
}

interface ParsedAuthorization {
  accessKeyId: string;
  scope: string[];
  signedHeaders: string[];
  signature: string;
}

const SIGNED_HEADERS_RE = /^[a-z0-9-]+(;[a-z0-9-]+)*$/;
const SIGNATURE_RE = /^[0-9a-fA-F]{64}$/;

/**
 * The gateway's authentication, checked in this order (each step answers its own error):
 * no header → MissingAuthenticationToken; malformed → InvalidAuthorization; bad scope →
 * InvalidCredential; unknown AK → InvalidAccessKey; X-Date missing or skewed → InvalidTimestamp;
 * anything else wrong → SignatureDoesNotMatch.
 */
export class Authenticator {
  // Signing keys only change with the date; caching saves four HMACs per request.
  private readonly keyCache = new Map<string, Buffer>();

  constructor(private readonly config: AuthConfig) {}

  verify(req: SignedRequest): AuthResult {
    const raw = headerString(req.headers, 'authorization').trim();
    if (raw === '') throw gatewayErrors.missingAuthenticationToken();
    const auth = parseAuthorization(raw);

    const xDate = headerString(req.headers, 'x-date').trim();
    const [shortDate, region, service, terminator] = auth.scope as [string, string, string, string];
    if (
      !/^\d{8}$/.test(shortDate) ||
      region !== this.config.region ||
      service !== SERVICE ||
      terminator !== 'request' ||
      (xDate !== '' && xDate.slice(0, 8) !== shortDate)
    ) {
      throw gatewayErrors.invalidCredential();
    }

    if (auth.accessKeyId !== this.config.accessKeyId) throw gatewayErrors.invalidAccessKey(auth.accessKeyId);

    if (xDate === '') throw gatewayErrors.invalidTimestamp('X-Date header is missing');
    const signedAt = parseXDate(xDate);
    if (signedAt === undefined) {
      throw gatewayErrors.invalidTimestamp(`X-Date ${xDate} is not yyyyMMddTHHmmssZ`);
    }
    const skewSeconds = Math.abs(this.config.now() - signedAt) / 1000;
    if (skewSeconds > this.config.maxSkewSeconds) {
      throw gatewayErrors.invalidTimestamp(
        `X-Date ${xDate} differs from server time by more than ${this.config.maxSkewSeconds} seconds`,
      );
    }

    // Hash what actually arrived; a sent X-Content-Sha256 that disagrees can never verify.
    const payloadHash = sha256Hex(req.body);
    const sentHash = req.headers['x-content-sha256'];
    if (sentHash !== undefined && headerString(req.headers, 'x-content-sha256').trim() !== payloadHash) {
      throw gatewayErrors.signatureDoesNotMatch();
    }

    const canonical = canonicalRequest({
      method: req.method,
      path: req.path,
      rawQuery: req.rawQuery,
      signedHeaders: auth.signedHeaders,
      headerValue: (name) =>
        name === 'host' ? canonicalHost(headerString(req.headers, 'host')) : headerString(req.headers, name),
      payloadHash,
    });
    const scope = `${shortDate}/${region}/${service}/${terminator}`;
    const expected = signatureHex(this.signingKey(shortDate), stringToSign(xDate, scope, canonical));
    if (!timingSafeEqual(Buffer.from(expected, 'latin1'), Buffer.from(auth.signature, 'latin1'))) {
      throw gatewayErrors.signatureDoesNotMatch();
    }

    const token = req.headers['x-security-token'];
    return {
      accessKeyId: auth.accessKeyId,
      region,
      ...(token !== undefined ? { securityToken: headerString(req.headers, 'x-security-token') } : {}),
    };
  }

  private signingKey(shortDate: string): Buffer {
    let key = this.keyCache.get(shortDate);
    if (!key) {
      if (this.keyCache.size > 16) this.keyCache.clear();
      key = deriveSigningKey(this.config.secretAccessKey, shortDate, this.config.region, SERVICE);
      this.keyCache.set(shortDate, key);
    }
    return key;
  }
}

/**
 * `HMAC-SHA256 Credential=AK/date/region/service/request, SignedHeaders=a;b, Signature=hex`.
 * Parts may come in any order, separated by commas with optional spaces; each exactly once.
 * SignedHeaders must be lowercase and include x-date (every SDK signs it).
 */
function parseAuthorization(raw: string): ParsedAuthorization {
  const space = raw.indexOf(' ');
  if (space < 0 || raw.slice(0, space) !== ALGORITHM) throw gatewayErrors.invalidAuthorization();
  const parts = new Map<string, string>();
  for (const part of raw.slice(space + 1).split(',')) {
    const trimmed = part.trim();
    const eq = trimmed.indexOf('=');
    if (eq <= 0) throw gatewayErrors.invalidAuthorization();
    const key = trimmed.slice(0, eq);
    if (parts.has(key) || !['Credential', 'SignedHeaders', 'Signature'].includes(key)) {
      throw gatewayErrors.invalidAuthorization();
    }
    parts.set(key, trimmed.slice(eq + 1));
  }
  const credential = parts.get('Credential');
  const signedHeaders = parts.get('SignedHeaders');
  const signature = parts.get('Signature');
  if (!credential || !signedHeaders || !signature) throw gatewayErrors.invalidAuthorization();
  if (!SIGNED_HEADERS_RE.test(signedHeaders) || !SIGNATURE_RE.test(signature)) {
    throw gatewayErrors.invalidAuthorization();
  }
  const headerList = signedHeaders.split(';');
  if (!headerList.includes('x-date') || new Set(headerList).size !== headerList.length) {
    throw gatewayErrors.invalidAuthorization();
  }
  // A well-formed header whose credential is not AK plus a four-part scope is a credential problem.
  const segments = credential.split('/');
  if (segments.length !== 5 || segments[0] === '') throw gatewayErrors.invalidCredential();
  return { accessKeyId: segments[0]!, scope: segments.slice(1), signedHeaders: headerList, signature };
}

function headerString(headers: IncomingHttpHeaders, name: string): string {
  const v = headers[name];
  if (v === undefined) return '';
  return Array.isArray(v) ? v.join(',') : v;
}
