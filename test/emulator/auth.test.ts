import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEmulator } from '../../src/emulator/index.js';
import {
  authorization,
  call,
  DEV_CREDENTIALS,
  fails,
  type HttpResult,
  prepare,
  rawRequest,
  type SigningStyle,
  toXDate,
  withEmulator,
} from './helpers.js';

const NOW = Date.parse('2025-06-01T12:00:00Z');
const MIN = 60_000;

let emu: RunningEmulator;
beforeAll(async () => {
  ({ emu } = await withEmulator({ now: () => NOW }));
});
afterAll(() => emu.close());

/** A valid signed ListUsers request with its Authorization (or other headers) replaced. */
function tampered(headers: Record<string, string | undefined>, at = NOW): Promise<HttpResult> {
  const req = prepare(emu.url, 'ListUsers', {}, { at });
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...req.headers, ...headers })) if (v !== undefined) merged[k] = v;
  return rawRequest(emu.url, { ...req, headers: merged });
}

function withAuth(authorization: string): Promise<HttpResult> {
  return tampered({ Authorization: authorization });
}

const validAuth = () => prepare(emu.url, 'ListUsers', {}, { at: NOW }).headers.Authorization!;

describe('gateway authentication errors', () => {
  it('no Authorization header → 401 MissingAuthenticationToken', async () => {
    const r = await fails(tampered({ Authorization: undefined }), 401, 'MissingAuthenticationToken');
    expect(r.json.ResponseMetadata.Error).toEqual({
      CodeN: 100003,
      Code: 'MissingAuthenticationToken',
      Message: 'Request is missing Authentication Token',
    });
    await fails(withAuth('   '), 401, 'MissingAuthenticationToken');
  });

  it.each([
    ['another scheme', 'Bearer abc'],
    ['algorithm only', 'HMAC-SHA256'],
    ['garbage after algorithm', 'HMAC-SHA256 garbage'],
    ['wrong algorithm', validAuthLater('HMAC-SHA1')],
    [
      'missing Signature',
      'HMAC-SHA256 Credential=AK/20250601/cn-beijing/cloudidentity/request, SignedHeaders=x-date',
    ],
    [
      'non-hex signature',
      `HMAC-SHA256 Credential=AK/20250601/cn-beijing/cloudidentity/request, SignedHeaders=x-date, Signature=${'z'.repeat(64)}`,
    ],
    [
      'short signature',
      'HMAC-SHA256 Credential=AK/20250601/cn-beijing/cloudidentity/request, SignedHeaders=x-date, Signature=abcd',
    ],
    [
      'x-date not signed',
      `HMAC-SHA256 Credential=AK/20250601/cn-beijing/cloudidentity/request, SignedHeaders=host, Signature=${'a'.repeat(64)}`,
    ],
    [
      'uppercase signed header',
      `HMAC-SHA256 Credential=AK/20250601/cn-beijing/cloudidentity/request, SignedHeaders=Host;x-date, Signature=${'a'.repeat(64)}`,
    ],
    [
      'duplicate part',
      `HMAC-SHA256 Credential=A/20250601/cn-beijing/cloudidentity/request, Credential=B/x, SignedHeaders=x-date, Signature=${'a'.repeat(64)}`,
    ],
    [
      'unknown part',
      `HMAC-SHA256 Credential=A/20250601/cn-beijing/cloudidentity/request, SignedHeaders=x-date, Signature=${'a'.repeat(64)}, Extra=1`,
    ],
  ])('malformed header (%s) → 400 InvalidAuthorization', async (_name, value) => {
    const header = typeof value === 'function' ? value() : value;
    await fails(withAuth(header), 400, 'InvalidAuthorization');
  });

  it('accepts the parts in another order and without the space after commas', async () => {
    const auth = validAuth();
    const m = /^HMAC-SHA256 (Credential=[^,]+), (SignedHeaders=[^,]+), (Signature=\w+)$/.exec(auth)!;
    expect((await withAuth(`HMAC-SHA256 ${m[3]},${m[1]},${m[2]}`)).status).toBe(200);
  });

  it.each([
    ['wrong service', (a: string) => a.replace('/cloudidentity/', '/iam/')],
    ['wrong region', (a: string) => a.replace('/cn-beijing/', '/cn-shanghai/')],
    ['wrong terminator', (a: string) => a.replace('/request,', '/aws4_request,')],
    ['date not matching X-Date', (a: string) => a.replace('/20250601/', '/20250602/')],
    ['date not 8 digits', (a: string) => a.replace('/20250601/', '/2025061/')],
    [
      'too few scope segments',
      (a: string) => a.replace('/cn-beijing/cloudidentity/request', '/cn-beijing/request'),
    ],
    ['empty access key', (a: string) => a.replace(/Credential=[^/]+\//, 'Credential=/')],
  ])('bad credential scope (%s) → 400 InvalidCredential', async (_name, mutate) => {
    const r = await fails(withAuth(mutate(validAuth())), 400, 'InvalidCredential');
    expect(r.json.ResponseMetadata.Error.Message).toBe(
      "Invalid credential in 'Authorization', Pls check credential in authorization header.",
    );
  });

  it('unknown access key → 401 InvalidAccessKey naming the key', async () => {
    const r = await fails(
      call(
        emu.url,
        'ListUsers',
        {},
        { at: NOW, credentials: { ...DEV_CREDENTIALS, accessKeyId: 'AKLTunknown' } },
      ),
      401,
      'InvalidAccessKey',
    );
    expect(r.json.ResponseMetadata.Error).toMatchObject({
      CodeN: 100009,
      Message: 'The accesskey [AKLTunknown] included in the request is invalid.',
    });
  });

  it('missing or malformed X-Date → 403 InvalidTimestamp', async () => {
    await fails(tampered({ 'X-Date': undefined }), 403, 'InvalidTimestamp');
    await fails(tampered({ 'X-Date': '20250601T250000Z' }), 403, 'InvalidTimestamp');
    await fails(tampered({ 'X-Date': '20250601 120000' }), 403, 'InvalidTimestamp');
  });

  it.each([
    ['14 minutes behind', -14 * MIN, 200],
    ['14 minutes ahead', 14 * MIN, 200],
    ['exactly 15 minutes behind', -15 * MIN, 200],
    ['16 minutes behind', -16 * MIN, 403],
    ['16 minutes ahead', 16 * MIN, 403],
  ])('clock skew %s → %i', async (_name, offset, status) => {
    const r = await call(emu.url, 'ListUsers', {}, { at: NOW + offset });
    expect(r.status, r.text).toBe(status);
    if (status === 403)
      expect(r.json.ResponseMetadata.Error).toMatchObject({ Code: 'InvalidTimestamp', CodeN: 100006 });
  });

  it('wrong secret key → 401 SignatureDoesNotMatch', async () => {
    const r = await fails(
      call(emu.url, 'ListUsers', {}, { at: NOW, credentials: { ...DEV_CREDENTIALS, secretKey: 'wrong' } }),
      401,
      'SignatureDoesNotMatch',
    );
    expect(r.json.ResponseMetadata.Error.CodeN).toBe(100010);
  });

  it('checks run in the documented order', async () => {
    // Bad scope beats unknown AK.
    const unknownAk = prepare(
      emu.url,
      'ListUsers',
      {},
      { at: NOW, credentials: { ...DEV_CREDENTIALS, accessKeyId: 'AKLTx' } },
    );
    await fails(
      withAuth(unknownAk.headers.Authorization!.replace('/cloudidentity/', '/iam/')),
      400,
      'InvalidCredential',
    );
    // Unknown AK beats a stale timestamp.
    await fails(
      call(
        emu.url,
        'ListUsers',
        {},
        { at: NOW - 60 * MIN, credentials: { ...DEV_CREDENTIALS, accessKeyId: 'AKLTx' } },
      ),
      401,
      'InvalidAccessKey',
    );
    // Stale timestamp beats a wrong signature.
    await fails(
      call(
        emu.url,
        'ListUsers',
        {},
        { at: NOW - 60 * MIN, credentials: { ...DEV_CREDENTIALS, secretKey: 'wrong' } },
      ),
      403,
      'InvalidTimestamp',
    );
    // Malformed header beats everything after it.
    await fails(
      tampered({ Authorization: 'HMAC-SHA256 nope', 'X-Date': undefined }),
      400,
      'InvalidAuthorization',
    );
  });

  it('an unsigned X-Content-Sha256 that disagrees with the body → SignatureDoesNotMatch', async () => {
    const req = prepare(emu.url, 'CreateUser', { UserName: 'hashy' }, { at: NOW, style: 'java' });
    await fails(
      rawRequest(emu.url, {
        ...req,
        headers: {
          ...req.headers,
          'X-Content-Sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        },
      }),
      401,
      'SignatureDoesNotMatch',
    );
  });

  it('an unsigned header may change freely', async () => {
    const req = prepare(emu.url, 'ListUsers', {}, { at: NOW, style: 'node', method: 'GET' });
    const r = await rawRequest(emu.url, {
      ...req,
      headers: { ...req.headers, 'User-Agent': 'something/else' },
    });
    expect(r.status).toBe(200);
  });

  it('auth failures are not counted as calls', async () => {
    emu.reset();
    await call(
      emu.url,
      'ListUsers',
      {},
      { at: NOW, credentials: { ...DEV_CREDENTIALS, secretKey: 'wrong' } },
    );
    expect(emu.calls()).toEqual({});
  });
});

describe('SignedHeaders variants the SDKs send', () => {
  const styles: [SigningStyle, string][] = [
    ['go', 'content-type;host;x-content-sha256;x-date'],
    ['node', 'host;x-content-sha256;x-date'],
    ['nodeOld', 'x-content-sha256;x-date'],
    ['java', 'x-date'],
  ];
  for (const [style, list] of styles) {
    for (const method of ['GET', 'POST'] as const) {
      for (const token of ['none', 'signed', 'unsigned'] as const) {
        it(`${style} (${list}) ${method}, STS token ${token}`, async () => {
          const r = await call(
            emu.url,
            'ListUsers',
            { PageSize: 5, QueryString: 'a b+c/中' },
            {
              at: NOW,
              style,
              method,
              ...(token !== 'none'
                ? { securityToken: 'STS-TOKEN/with+chars=', unsignedToken: token === 'unsigned' }
                : {}),
            },
          );
          expect(r.status, r.text).toBe(200);
          const auth = prepare(
            emu.url,
            'ListUsers',
            {},
            {
              at: NOW,
              style,
              method,
              ...(token !== 'none' ? { securityToken: 't', unsignedToken: token === 'unsigned' } : {}),
            },
          ).headers.Authorization!;
          const listed = /SignedHeaders=([^,]+)/.exec(auth)![1]!;
          // GET without a body: the Node SDKs leave x-content-sha256 out.
          const expected =
            method === 'GET' && style.startsWith('node') ? list.replace('x-content-sha256;', '') : list;
          expect(listed).toBe(token === 'signed' ? `${expected};x-security-token` : expected);
        });
      }
    }
  }

  it('verifies the SignedHeaders in the order listed', async () => {
    // A client that lists (and canonicalises) headers unsorted still verifies: the list is authoritative.
    const req = prepare(emu.url, 'ListUsers', {}, { at: NOW, method: 'GET' });
    const headers = { ...req.headers };
    headers.Authorization = authorization({
      method: 'GET',
      query: { Action: 'ListUsers', Version: '2023-01-01' },
      headers,
      signedHeaders: ['x-date', 'host'],
      body: '',
      credentials: DEV_CREDENTIALS,
      xDate: toXDate(NOW),
    });
    expect((await rawRequest(emu.url, { ...req, headers })).status).toBe(200);
  });
});

describe('configured credentials and region', () => {
  it('accepts only the configured pair and echoes the configured region', async () => {
    const creds = { accessKeyId: 'AKLTcustom', secretKey: 'custom-secret', region: 'cn-shanghai' };
    const { emu: custom, api } = await withEmulator({
      accessKeyId: creds.accessKeyId,
      secretAccessKey: creds.secretKey,
      region: creds.region,
    });
    try {
      const r = await api('ListUsers', {}, { credentials: creds });
      expect(r.status).toBe(200);
      expect(r.json.ResponseMetadata.Region).toBe('cn-shanghai');
      await fails(api('ListUsers', {}), 400, 'InvalidCredential');
      await fails(
        api('ListUsers', {}, { credentials: { ...DEV_CREDENTIALS, region: 'cn-shanghai' } }),
        401,
        'InvalidAccessKey',
      );
    } finally {
      await custom.close();
    }
  });
});

/** Builds a valid header with its algorithm swapped (evaluated lazily, after the emulator starts). */
function validAuthLater(algorithm: string): () => string {
  return () => validAuth().replace('HMAC-SHA256', algorithm);
}
