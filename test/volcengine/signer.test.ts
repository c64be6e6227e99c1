import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  canonicalQueryString,
  canonicalUri,
  deriveSigningKey,
  formatXDate,
  normalizeHost,
  percentEncode,
  sha256Hex,
  signRequest,
} from '../../src/volcengine/signer.js';

interface Vector {
  id: string;
  accessKeyId: string;
  secretKey: string;
  region: string;
  service: string;
  xDate: string;
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  unsignedHeaders?: Record<string, string>;
  body: string;
  signedHeaders: string;
  expectedPayloadHash: string;
  expectedCanonicalQueryString: string;
  expectedCanonicalRequest: string;
  expectedCanonicalRequestSha256: string;
  expectedCredentialScope: string;
  expectedStringToSign: string;
  expectedSignature: string;
  expectedAuthorization: string;
}

interface VectorFile {
  common: { shortDate: string; secretKey: string; region: string; service: string };
  signingKeyHex: string;
  emptyBodySha256: string;
  vectors: Vector[];
}

// Copied from shared/reference so the test runs on a clean clone.
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/signing-vectors.json', import.meta.url), 'utf8'),
) as VectorFile;

/** "20250309T144824Z" → Date */
function parseXDate(x: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(x);
  if (!m) throw new Error(`bad X-Date ${x}`);
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

describe('signing vectors', () => {
  it('has all four vectors', () => {
    expect(fixture.vectors.map((v) => v.id)).toEqual(['V1', 'V2', 'V3', 'V4']);
  });

  it('derives the signing key', () => {
    const { secretKey, shortDate, region, service } = fixture.common;
    expect(deriveSigningKey(secretKey, shortDate, region, service).toString('hex')).toBe(
      fixture.signingKeyHex,
    );
  });

  it('hashes the empty body', () => {
    expect(sha256Hex('')).toBe(fixture.emptyBodySha256);
    expect(sha256Hex(new Uint8Array())).toBe(fixture.emptyBodySha256);
  });

  for (const v of fixture.vectors) {
    it(`reproduces ${v.id} byte for byte`, () => {
      const token = v.headers['X-Security-Token'];
      // The signer adds X-Date, X-Content-Sha256 and X-Security-Token itself; pass only the rest.
      const given: Record<string, string> = { ...v.unsignedHeaders };
      for (const [k, val] of Object.entries(v.headers)) {
        if (!['x-date', 'x-content-sha256', 'x-security-token'].includes(k.toLowerCase())) given[k] = val;
      }
      const r = signRequest({
        method: v.method,
        path: v.path,
        query: v.query,
        headers: given,
        body: v.body,
        accessKeyId: v.accessKeyId,
        secretAccessKey: v.secretKey,
        sessionToken: token,
        region: v.region,
        service: v.service,
        date: parseXDate(v.xDate),
        signedHeaderNames: v.signedHeaders.split(';'),
      });
      expect(deriveSigningKey(v.secretKey, v.xDate.slice(0, 8), v.region, v.service).toString('hex')).toBe(
        fixture.signingKeyHex,
      );
      expect(r.xDate).toBe(v.xDate);
      expect(r.payloadHash).toBe(v.expectedPayloadHash);
      expect(sha256Hex(v.body)).toBe(v.expectedPayloadHash);
      expect(canonicalQueryString(v.query)).toBe(v.expectedCanonicalQueryString);
      expect(r.canonicalQueryString).toBe(v.expectedCanonicalQueryString);
      expect(r.signedHeaders).toBe(v.signedHeaders);
      expect(r.canonicalRequest).toBe(v.expectedCanonicalRequest);
      expect(sha256Hex(r.canonicalRequest)).toBe(v.expectedCanonicalRequestSha256);
      expect(r.credentialScope).toBe(v.expectedCredentialScope);
      expect(r.stringToSign).toBe(v.expectedStringToSign);
      expect(r.signature).toBe(v.expectedSignature);
      expect(r.authorization).toBe(v.expectedAuthorization);
      // The headers to add are exactly what the vector lists as sent.
      expect(r.headers['X-Date']).toBe(v.headers['X-Date']);
      expect(r.headers['X-Content-Sha256']).toBe(v.headers['X-Content-Sha256']);
      expect(r.headers['X-Security-Token']).toBe(token);
      expect(r.headers.Authorization).toBe(v.expectedAuthorization);
    });
  }

  it('uses the Go/Python header set by default (V1 and V3 without signedHeaderNames)', () => {
    for (const id of ['V1', 'V3']) {
      const v = fixture.vectors.find((x) => x.id === id)!;
      const r = signRequest({
        method: v.method,
        path: v.path,
        query: v.query,
        headers: { 'Content-Type': v.headers['Content-Type'], Host: v.headers.Host },
        body: v.body,
        accessKeyId: v.accessKeyId,
        secretAccessKey: v.secretKey,
        sessionToken: v.headers['X-Security-Token'],
        region: v.region,
        service: v.service,
        date: parseXDate(v.xDate),
      });
      expect(r.signedHeaders).toBe(v.signedHeaders);
      expect(r.signature).toBe(v.expectedSignature);
    }
  });

  it('signs V2 (no content-type) with the default set and a Uint8Array body', () => {
    const v = fixture.vectors.find((x) => x.id === 'V2')!;
    const r = signRequest({
      method: 'get',
      path: '',
      query: v.query,
      headers: { host: 'open.volcengineapi.com:443' },
      body: new Uint8Array(),
      accessKeyId: v.accessKeyId,
      secretAccessKey: v.secretKey,
      region: v.region,
      service: v.service,
      date: parseXDate(v.xDate),
    });
    expect(r.signedHeaders).toBe('host;x-content-sha256;x-date');
    expect(r.authorization).toBe(v.expectedAuthorization);
    expect(r.headers['X-Security-Token']).toBeUndefined();
  });

  it('trims header values and ignores header-name case', () => {
    const v = fixture.vectors.find((x) => x.id === 'V1')!;
    const r = signRequest({
      method: 'POST',
      path: '/',
      query: v.query,
      headers: { 'CONTENT-TYPE': '  application/json; charset=utf-8 ', HOST: ' open.volcengineapi.com:80' },
      body: Buffer.from(v.body, 'utf8'),
      accessKeyId: v.accessKeyId,
      secretAccessKey: v.secretKey,
      region: v.region,
      service: v.service,
      date: parseXDate(v.xDate),
    });
    expect(r.signature).toBe(v.expectedSignature);
  });
});

describe('percentEncode / canonicalQueryString', () => {
  it.each([
    [' ', '%20'],
    ['+', '%2B'],
    ['/', '%2F'],
    ['*', '%2A'],
    ['~', '~'],
    ['-_.', '-_.'],
    ['AZaz09', 'AZaz09'],
    ["!'()", '%21%27%28%29'],
    ['=&%', '%3D%26%25'],
    ['中', '%E4%B8%AD'],
    ['é', '%C3%A9'],
    ['😀', '%F0%9F%98%80'],
    ['', ''],
  ])('percentEncode(%j) = %s', (input, expected) => {
    expect(percentEncode(input)).toBe(expected);
  });

  it('writes k= for empty values', () => {
    expect(canonicalQueryString({ b: '', a: 'x' })).toBe('a=x&b=');
  });

  it('sorts keys in byte order: uppercase before lowercase, shorter prefix first', () => {
    expect(canonicalQueryString({ b: '1', a: '2', B: '3', A: '4', aa: '5', _: '6', Z: '7' })).toBe(
      'A=4&B=3&Z=7&_=6&a=2&aa=5&b=1',
    );
  });

  it('sorts non-ASCII keys by UTF-8 bytes, not UTF-16 code units', () => {
    // U+FF5E (EF BD 9E) sorts before U+1F600 (F0 9F 98 80) in UTF-8, after it in UTF-16.
    expect(canonicalQueryString({ '😀': '1', '～': '2' })).toBe('%EF%BD%9E=2&%F0%9F%98%80=1');
  });

  it('encodes keys as well as values', () => {
    expect(canonicalQueryString({ 'a b': 'c d', 'x/y': '1+1' })).toBe('a%20b=c%20d&x%2Fy=1%2B1');
  });

  it('returns an empty string for no parameters', () => {
    expect(canonicalQueryString({})).toBe('');
  });
});

describe('helpers', () => {
  it('formats X-Date in UTC without milliseconds', () => {
    expect(formatXDate(new Date('2025-03-09T14:48:24.987Z'))).toBe('20250309T144824Z');
  });

  it('encodes path segments', () => {
    expect(canonicalUri('/')).toBe('/');
    expect(canonicalUri('')).toBe('/');
    expect(canonicalUri('/a b/c')).toBe('/a%20b/c');
  });

  it('strips only default ports from the host', () => {
    expect(normalizeHost('example.com:443')).toBe('example.com');
    expect(normalizeHost('example.com:80')).toBe('example.com');
    expect(normalizeHost('127.0.0.1:8443')).toBe('127.0.0.1:8443');
  });

  it('requires a Host header for the default set and explicit headers to be present', () => {
    const base = {
      method: 'POST',
      path: '/',
      query: {},
      body: '',
      accessKeyId: 'AK',
      secretAccessKey: 'SK',
      region: 'cn-beijing',
      service: 'cloudidentity',
      date: new Date(0),
    };
    expect(() => signRequest({ ...base, headers: {} })).toThrow(/Host/);
    expect(() =>
      signRequest({ ...base, headers: { Host: 'h' }, signedHeaderNames: ['content-type'] }),
    ).toThrow(/content-type/);
  });
});
