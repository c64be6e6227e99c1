import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Authenticator } from '../../src/emulator/gateway/auth.js';
import {
  canonicalQueryString,
  canonicalRequest,
  deriveSigningKey,
  EMPTY_BODY_SHA256,
  sha256Hex,
  signatureHex,
  stringToSign,
} from '../../src/emulator/gateway/signature.js';
import { type RunningEmulator, startEmulator } from '../../src/emulator/index.js';
import { authorization, fails, type HttpResult, rawRequest } from './helpers.js';

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
  expectedStringToSign: string;
  expectedCredentialScope: string;
  expectedSignature: string;
  expectedAuthorization: string;
}

const file = JSON.parse(
  readFileSync(new URL('../fixtures/signing-vectors.json', import.meta.url), 'utf8'),
) as {
  signingKeyHex: string;
  emptyBodySha256: string;
  common: {
    accessKeyId: string;
    secretKey: string;
    region: string;
    xDate: string;
    shortDate: string;
    service: string;
  };
  vectors: Vector[];
};
const vectors = file.vectors;
const VECTOR_NOW = Date.parse('2025-03-09T14:48:24Z');

const enc = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
const pathOf = (query: Record<string, string>) =>
  '/?' +
  Object.entries(query)
    .map(([k, v]) => `${enc(k)}=${enc(v)}`)
    .join('&');

describe('signature primitives against the published vectors', () => {
  it('derives the published signing key', () => {
    const c = file.common;
    expect(deriveSigningKey(c.secretKey, c.shortDate, c.region, c.service).toString('hex')).toBe(
      file.signingKeyHex,
    );
    expect(sha256Hex('')).toBe(file.emptyBodySha256);
    expect(EMPTY_BODY_SHA256).toBe(file.emptyBodySha256);
  });

  for (const v of vectors) {
    it(`${v.id}: canonical query, canonical request, string to sign and signature`, () => {
      const rawQuery = pathOf(v.query).slice(2);
      expect(canonicalQueryString(rawQuery)).toBe(v.expectedCanonicalQueryString);
      const lower = Object.fromEntries(Object.entries(v.headers).map(([k, val]) => [k.toLowerCase(), val]));
      const canonical = canonicalRequest({
        method: v.method,
        path: v.path,
        rawQuery,
        signedHeaders: v.signedHeaders.split(';'),
        headerValue: (n) => lower[n] ?? '',
        payloadHash: sha256Hex(v.body),
      });
      expect(sha256Hex(v.body)).toBe(v.expectedPayloadHash);
      expect(canonical).toBe(v.expectedCanonicalRequest);
      const sts = stringToSign(v.xDate, v.expectedCredentialScope, canonical);
      expect(sts).toBe(v.expectedStringToSign);
      const key = deriveSigningKey(v.secretKey, v.xDate.slice(0, 8), v.region, v.service);
      expect(signatureHex(key, sts)).toBe(v.expectedSignature);
    });

    it(`${v.id}: the test helper signer reproduces the expected Authorization`, () => {
      expect(
        authorization({
          method: v.method,
          query: v.query,
          headers: v.headers,
          signedHeaders: v.signedHeaders.split(';'),
          body: v.body,
          credentials: { accessKeyId: v.accessKeyId, secretKey: v.secretKey, region: v.region },
          xDate: v.xDate,
        }),
      ).toBe(v.expectedAuthorization);
    });
  }

  it("decodes '+' in a raw query as a space, like form encoding", () => {
    expect(canonicalQueryString('QueryString=a+b&Action=X')).toBe('Action=X&QueryString=a%20b');
    expect(canonicalQueryString('k=%2A%21')).toBe('k=%2A%21');
    expect(canonicalQueryString('b=2&a=1&a=0&flag')).toBe('a=0&a=1&b=2&flag=');
  });
});

describe('Authenticator accepts the vectors in-process', () => {
  for (const v of vectors) {
    it(`${v.id} verifies`, () => {
      const auth = new Authenticator({
        accessKeyId: v.accessKeyId,
        secretAccessKey: v.secretKey,
        region: v.region,
        maxSkewSeconds: 900,
        now: () => VECTOR_NOW,
      });
      const headers = Object.fromEntries(
        Object.entries({ ...v.headers, ...v.unsignedHeaders, Authorization: v.expectedAuthorization }).map(
          ([k, val]) => [k.toLowerCase(), val],
        ),
      );
      const result = auth.verify({
        method: v.method,
        path: '/',
        rawQuery: pathOf(v.query).slice(2),
        headers,
        body: Buffer.from(v.body),
      });
      expect(result.accessKeyId).toBe(v.accessKeyId);
      expect(result.securityToken).toBe(v.headers['X-Security-Token']);
    });
  }
});

describe('emulator over HTTP with the vectors', () => {
  let emu: RunningEmulator;

  beforeAll(async () => {
    emu = await startEmulator({
      accessKeyId: file.common.accessKeyId,
      secretAccessKey: file.common.secretKey,
      region: file.common.region,
      now: () => VECTOR_NOW,
    });
  });
  afterAll(() => emu.close());
  beforeEach(() => emu.reset());

  /** Sends the vector as published, with optional changes applied to a copy. */
  function send(
    v: Vector,
    change: {
      headers?: Record<string, string | undefined>;
      body?: string;
      query?: Record<string, string>;
    } = {},
  ): Promise<HttpResult> {
    const headers: Record<string, string> = {};
    const merged = {
      ...v.headers,
      ...v.unsignedHeaders,
      Authorization: v.expectedAuthorization,
      ...change.headers,
    };
    for (const [k, val] of Object.entries(merged)) if (val !== undefined) headers[k] = val;
    return rawRequest(emu.url, {
      method: v.method,
      path: pathOf(change.query ?? v.query),
      headers,
      ...(v.method === 'POST' ? { body: change.body ?? v.body } : {}),
    });
  }

  for (const v of vectors) {
    it(`${v.id} is accepted exactly as published`, async () => {
      const r = await send(v);
      expect(r.status, r.text).toBe(200);
      expect(r.json.ResponseMetadata).toMatchObject({
        Action: v.query.Action,
        Version: '2023-01-01',
        Service: 'cloudidentity',
        Region: 'cn-beijing',
      });
      expect(r.json.ResponseMetadata.Error).toBeUndefined();
    });

    it(`${v.id} tampered signature is rejected`, async () => {
      const sig = v.expectedSignature;
      const flipped = sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0');
      await fails(
        send(v, { headers: { Authorization: v.expectedAuthorization.replace(sig, flipped) } }),
        401,
        'SignatureDoesNotMatch',
      );
    });

    it(`${v.id} tampered query is rejected`, async () => {
      await fails(send(v, { query: { ...v.query, Extra: '1' } }), 401, 'SignatureDoesNotMatch');
    });

    it(`${v.id} a different X-Date (same day, inside the skew window) is rejected`, async () => {
      await fails(send(v, { headers: { 'X-Date': '20250309T144825Z' } }), 401, 'SignatureDoesNotMatch');
    });

    it(`${v.id} a wrong secret key is rejected`, async () => {
      const forged = authorization({
        method: v.method,
        query: v.query,
        headers: v.headers,
        signedHeaders: v.signedHeaders.split(';'),
        body: v.body,
        credentials: { accessKeyId: v.accessKeyId, secretKey: 'not-the-secret', region: v.region },
        xDate: v.xDate,
      });
      await fails(send(v, { headers: { Authorization: forged } }), 401, 'SignatureDoesNotMatch');
    });
  }

  const [V1, V2, V3, V4] = vectors as [Vector, Vector, Vector, Vector];

  it('rejects a changed body even when X-Content-Sha256 is updated to match it', async () => {
    const body = '{"UserName":"mallory"}';
    await fails(
      send(V1, { body, headers: { 'X-Content-Sha256': sha256Hex(body) } }),
      401,
      'SignatureDoesNotMatch',
    );
    await fails(
      send(V4, { body, headers: { 'X-Content-Sha256': sha256Hex(body) } }),
      401,
      'SignatureDoesNotMatch',
    );
  });

  it('rejects a body that disagrees with the sent X-Content-Sha256', async () => {
    await fails(send(V1, { body: '{"UserName":"alicf"}' }), 401, 'SignatureDoesNotMatch');
  });

  it('rejects a GET whose X-Content-Sha256 does not describe the empty body', async () => {
    await fails(send(V2, { headers: { 'X-Content-Sha256': sha256Hex('x') } }), 401, 'SignatureDoesNotMatch');
  });

  it('rejects a changed Host when host is signed', async () => {
    await fails(send(V1, { headers: { Host: 'evil.example.com' } }), 401, 'SignatureDoesNotMatch');
    await fails(send(V2, { headers: { Host: 'open.volcengineapi.com:8443' } }), 401, 'SignatureDoesNotMatch');
  });

  it('strips :443 and :80 from Host before verifying', async () => {
    expect((await send(V1, { headers: { Host: 'open.volcengineapi.com:443' } })).status).toBe(200);
    emu.reset();
    expect((await send(V1, { headers: { Host: 'open.volcengineapi.com:80' } })).status).toBe(200);
  });

  it('signed Content-Type must match (V1) but unsigned Content-Type may differ (V4)', async () => {
    await fails(send(V1, { headers: { 'Content-Type': 'application/json' } }), 401, 'SignatureDoesNotMatch');
    expect((await send(V4, { headers: { 'Content-Type': 'application/json' } })).status).toBe(200);
  });

  it('V3 without its signed X-Security-Token is rejected; V1 plus an unsigned token is accepted', async () => {
    await fails(send(V3, { headers: { 'X-Security-Token': undefined } }), 401, 'SignatureDoesNotMatch');
    await fails(send(V3, { headers: { 'X-Security-Token': 'OTHERTOKEN' } }), 401, 'SignatureDoesNotMatch');
    expect((await send(V1, { headers: { 'X-Security-Token': 'UNSIGNEDTOKEN' } })).status).toBe(200);
  });

  it('signatures are compared exactly (uppercase hex does not verify)', async () => {
    const upper = V1.expectedAuthorization.replace(V1.expectedSignature, V1.expectedSignature.toUpperCase());
    await fails(send(V1, { headers: { Authorization: upper } }), 401, 'SignatureDoesNotMatch');
  });
});
