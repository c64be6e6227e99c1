import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_SECRET_KEY } from '../../src/emulator/index.js';
import { createLogger, redactUrl, scrubPii } from '../../src/logger.js';
import { Metrics } from '../../src/ops/metrics.js';
import { type Harness, startHarness, TEST_TOKEN } from '../helpers/harness.js';
import { parseLogs } from './helpers.js';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const EMAIL = 'pii.bob.rossi@example.org';
const EMAIL2 = 'bob.work.mail@example.org';
const PHONE = '+86 138 0013 8000';
const PASSWORD = 'Sup3r-S3cret-Passw0rd!';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, stream };
}

type Line = Record<string, unknown> & {
  req?: { id: string; method: string; url: string };
  res?: { statusCode: number };
};
const accessLines = (logs: string[]) =>
  parseLogs(logs).filter(
    (l): l is Line => (l as Line).res !== undefined && typeof l.responseTime === 'number',
  );

describe('access log', () => {
  let h: Harness;
  const emulatorLog = capture();
  beforeAll(async () => {
    h = await startHarness({
      metrics: new Metrics({ defaultMetrics: false }),
      emulator: { logger: pino({ level: 'debug' }, emulatorLog.stream) },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('writes one line per request with request id, route, status, latency and the upstream RequestIds', async () => {
    const before = h.logs.length;
    const emulatorBefore = emulatorLog.lines.length;
    const res = await h.http
      .post('/scim/v2/Users')
      .set('X-Request-Id', 'idp-req-0001')
      .send({ schemas: [USER], userName: 'log.carol@example.com' });
    expect(res.status).toBe(201);
    expect(res.headers['x-request-id']).toBe('idp-req-0001');

    const lines = accessLines(h.logs.slice(before));
    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line.req).toMatchObject({ id: 'idp-req-0001', method: 'POST', url: '/scim/v2/Users' });
    expect(line.res).toEqual({ statusCode: 201 });
    expect(line.route).toBe('/scim/v2/Users');
    expect(line.level).toBe(30);
    expect(typeof line.responseTime).toBe('number');

    // Exactly the RequestIds CloudIdentity (here the emulator) assigned to the calls of this request.
    const upstream = parseLogs(emulatorLog.lines.slice(emulatorBefore))
      .filter((l) => l.msg === 'emulator request')
      .map((l) => l.requestId);
    expect(upstream.length).toBeGreaterThan(0);
    expect(line.upstreamRequestIds).toEqual(upstream);
  });

  it('generates a request id when none (or an unsafe one) is sent, and echoes it', async () => {
    const before = h.logs.length;
    const res = await h.http.get('/scim/v2/ServiceProviderConfig').set('X-Request-Id', 'bad id <script>');
    const id = res.headers['x-request-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const [line] = accessLines(h.logs.slice(before));
    expect(line.req?.id).toBe(id);
    expect(line.upstreamRequestIds).toBeUndefined();
  });

  it('logs the route template of failed requests too', async () => {
    const before = h.logs.length;
    const res = await h.http.get('/scim/v2/Users/00000000-0000-4000-8000-000000000000');
    expect(res.status).toBe(404);
    const [line] = accessLines(h.logs.slice(before));
    expect(line.route).toBe('/scim/v2/Users/:id');
    expect(line.level).toBe(40);
  });

  it('logs successful probes at debug level only', async () => {
    const before = h.logs.length;
    await h.http.get('/healthz');
    const [line] = accessLines(h.logs.slice(before));
    expect(line.level).toBe(20);
    expect(line.route).toBe('/healthz');
  });
});

describe('redaction', () => {
  let h: Harness;
  let credentialFailure: Harness;
  beforeAll(async () => {
    h = await startHarness({ metrics: new Metrics({ defaultMetrics: false }) });
    // An emulator that expects another secret: every call fails with SignatureDoesNotMatch.
    credentialFailure = await startHarness({ emulator: { secretAccessKey: 'the-emulator-secret-xyz' } });
  });
  afterAll(async () => {
    await h?.close();
    await credentialFailure?.close();
  });

  it('no secret and no personal data reaches the log (LOG_PII unset)', async () => {
    const created = await h.http.post('/scim/v2/Users').send({
      schemas: [USER],
      userName: EMAIL,
      name: { givenName: 'Bob', familyName: 'Rossi' },
      password: PASSWORD,
      emails: [
        { value: EMAIL, type: 'work', primary: true },
        { value: EMAIL2, type: 'home' },
      ],
      phoneNumbers: [{ value: PHONE, type: 'mobile' }],
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(
      (await h.http.get(`/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${EMAIL}"`)}`)).status,
    ).toBe(200);
    expect(
      (await h.http.get(`/scim/v2/Users?filter=${encodeURIComponent(`emails.value co "${EMAIL2}"`)}`)).status,
    ).toBeLessThan(500);
    expect(
      (
        await h.http.patch(`/scim/v2/Users/${id}`).send({
          schemas: [PATCH],
          Operations: [{ op: 'replace', path: 'phoneNumbers', value: [{ value: PHONE, type: 'work' }] }],
        })
      ).status,
    ).toBe(200);
    // Conflict, an e-mail in the path, and an upstream failure that is logged with its error.
    expect((await h.http.post('/scim/v2/Users').send({ schemas: [USER], userName: EMAIL })).status).toBe(409);
    expect((await h.http.get(`/scim/v2/Users/${encodeURIComponent(EMAIL)}`)).status).toBe(404);
    h.emulator.setFaults([{ action: 'CreateUser', probability: 1, fault: 'InternalError' }]);
    const failed = await h.http
      .post('/scim/v2/Users')
      .send({ schemas: [USER], userName: `x${EMAIL}`, password: PASSWORD, phoneNumbers: [{ value: PHONE }] });
    expect(failed.status).toBeGreaterThanOrEqual(500);
    h.emulator.setFaults([]);
    // Wrong SCIM token.
    expect(
      (await h.http.get('/scim/v2/Users').set('Authorization', 'Bearer wrong-token-abcdefghijkl')).status,
    ).toBe(401);

    const text = h.logs.join('');
    expect(text).toContain('"statusCode":201'); // the requests were logged at all
    expect(text).toContain('[redacted]'); // the filter literal
    for (const secret of [TEST_TOKEN, 'wrong-token-abcdefghijkl', DEV_SECRET_KEY, PASSWORD]) {
      expect(text).not.toContain(secret);
    }
    for (const pii of [
      EMAIL,
      EMAIL2,
      'pii.bob.rossi',
      'bob.work.mail',
      PHONE,
      '138 0013 8000',
      '13800138000',
    ]) {
      expect(text).not.toContain(pii);
    }
  });

  it('credential failures upstream are logged loudly but without the keys', async () => {
    const res = await credentialFailure.http.get('/scim/v2/Users');
    expect(res.status).toBe(502);
    const text = credentialFailure.logs.join('');
    expect(text).toContain('SignatureDoesNotMatch');
    expect(text).toContain('check VOLCENGINE_ACCESS_KEY');
    expect(text).not.toContain(DEV_SECRET_KEY);
    expect(text).not.toContain('the-emulator-secret-xyz');
    expect(text).not.toContain(TEST_TOKEN);
    // The client's response says nothing about the bridge's credentials either.
    expect(res.text).not.toContain(DEV_SECRET_KEY);
  });

  it('LOG_PII=true keeps personal data (and still hides secrets)', async () => {
    const pii = await startHarness({ env: { LOG_PII: 'true' } });
    try {
      await pii.http.get(`/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${EMAIL}"`)}`);
      const text = pii.logs.join('');
      expect(text).toContain('pii.bob.rossi@example.org');
      expect(text).not.toContain(TEST_TOKEN);
    } finally {
      await pii.close();
    }
  });

  it('the logger censors secret and personal fields wherever they are logged', () => {
    const { lines, stream } = capture();
    const logger = createLogger({ level: 'info', logPii: false, destination: stream });
    logger.info(
      {
        req: { headers: { authorization: `Bearer ${TEST_TOKEN}`, cookie: 'sid=abc' } },
        headers: { authorization: 'Bearer tok-2' },
        config: { scimTokens: [TEST_TOKEN], databaseUrl: 'postgres://u:pw-123@db/x', metricsToken: 'mt-123' },
        volcengine: { secretAccessKey: DEV_SECRET_KEY, sessionToken: 'sts-token-1' },
        user: {
          password: PASSWORD,
          emails: [{ value: EMAIL }],
          phoneNumbers: [{ value: PHONE }],
          userName: EMAIL,
        },
        Email: EMAIL,
        Phone: PHONE,
      },
      'everything sensitive',
    );
    logger.error({ err: new Error(`user ${EMAIL} (${PHONE}) failed`) }, 'boom');
    const text = lines.join('');
    for (const s of [
      TEST_TOKEN,
      'tok-2',
      'sid=abc',
      'pw-123',
      'mt-123',
      DEV_SECRET_KEY,
      'sts-token-1',
      PASSWORD,
      EMAIL,
      PHONE,
    ]) {
      expect(text).not.toContain(s);
    }
    expect(text).toContain('[redacted]');
    expect(text).toContain('user [email] ([phone]) failed');

    const loose = capture();
    createLogger({ level: 'info', logPii: true, destination: loose.stream }).info(
      { user: { emails: [{ value: EMAIL }], password: PASSWORD }, secretAccessKey: DEV_SECRET_KEY },
      'pii allowed',
    );
    expect(loose.lines.join('')).toContain(EMAIL);
    expect(loose.lines.join('')).not.toContain(PASSWORD);
    expect(loose.lines.join('')).not.toContain(DEV_SECRET_KEY);
  });

  it('masks filter literals and addresses in URLs', () => {
    expect(redactUrl('/scim/v2/Users?filter=userName%20eq%20%22a%40b.com%22&count=5', false)).toBe(
      '/scim/v2/Users?filter=userName eq "[redacted]"&count=5',
    );
    expect(redactUrl('/scim/v2/Users/a@b.com', false)).toBe('/scim/v2/Users/[email]');
    expect(redactUrl('/scim/v2/Users?filter=userName eq "a@b.com"', true)).toBe(
      '/scim/v2/Users?filter=userName eq "a@b.com"',
    );
    expect(scrubPii('call tel:+1-201-555-0123 now')).toBe('call tel:[phone] now');
  });
});

describe('query strings in logs (issue 11, finding 9)', () => {
  const SECRET = 'tok-9f8e7d6c5b4a';

  it('only paging and projection parameters are kept; every other value is redacted, LOG_PII or not', () => {
    for (const logPii of [false, true]) {
      const shown = redactUrl(
        `/scim/v2/Users?access_token=${SECRET}&password=${SECRET}&startIndex=3&count=5&attributes=userName&sortBy=userName&sortOrder=ascending&excludedAttributes=groups`,
        logPii,
      );
      expect(shown).not.toContain(SECRET);
      expect(shown).toBe(
        '/scim/v2/Users?access_token=[redacted]&password=[redacted]&startIndex=3&count=5&attributes=userName&sortBy=userName&sortOrder=ascending&excludedAttributes=groups',
      );
    }
    // A secret pasted as a parameter name is not a plain name: redacted too.
    expect(redactUrl(`/scim/v2/Users?${SECRET}`, true)).toBe('/scim/v2/Users?[redacted]=[redacted]');
  });

  it('filter values are masked, an unterminated or escaped string and bare values included', () => {
    const cases: Array<[string, string]> = [
      [`userName eq "${SECRET}`, 'userName eq "[redacted]"'],
      [`userName eq "${SECRET}\\`, 'userName eq "[redacted]"'],
      [`title eq "a\\"${SECRET}" or nickName pr`, 'title eq "[redacted]" or nickName pr'],
      [`externalId eq ${SECRET} and active eq true`, 'externalId eq [redacted] and active eq [redacted]'],
      [`emails[value co "${SECRET}"]`, 'emails[value co "[redacted]"]'],
    ];
    for (const [filter, masked] of cases) {
      const shown = redactUrl(`/scim/v2/Users?filter=${encodeURIComponent(filter)}`, false);
      expect(shown).toBe(`/scim/v2/Users?filter=${masked}`);
      expect(shown).not.toContain(SECRET);
    }
  });

  it('the access log of a real request holds no secret from its query string', async () => {
    for (const logPii of ['false', 'true']) {
      const h = await startHarness({ env: { LOG_PII: logPii } });
      try {
        await h.http.get(`/scim/v2/Users?access_token=${SECRET}&count=1`);
        await h.http.get(`/scim/v2/Users?password=${SECRET}`);
        await h.http.get(`/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${SECRET}`)}`);
        await h.http.get(`/nowhere?access_token=${SECRET}`);
        const lines = accessLines(h.logs);
        expect(lines.length).toBeGreaterThanOrEqual(4);
        expect(lines.some((l) => l.req?.url === '/scim/v2/Users?access_token=[redacted]&count=1')).toBe(true);
        if (logPii === 'false') expect(h.logs.join('')).not.toContain(SECRET);
        else {
          // LOG_PII keeps personal data (the filter as sent), never parameters outside SCIM's own.
          const nonFilter = h.logs.filter((l) => !l.includes('filter='));
          expect(nonFilter.join('')).not.toContain(SECRET);
        }
      } finally {
        await h.close();
      }
    }
  });
});
