// No SCIM token, Volcengine secret key, password or Authorization header value ever appears in a
// log line or an error body, whatever happens: creates with passwords, bad tokens, upstream
// credential failures, upstream faults, bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_SECRET_KEY, startEmulator } from '../../src/emulator/index.js';
import { type Harness, startHarness, TEST_TOKEN } from '../helpers/harness.js';
import { patchBody, type Res, USER_SCHEMA, uniqueName, userBody, variantApp } from './users-support.js';

const PASSWORD = 'Sup3r-Secret-Passw0rd!xyz';
const WRONG_TOKEN = 'wrong-token-but-still-a-secret-9f8e7d';
const OTHER_SECRET = 'another-volcengine-secret-key-42';

describe('secrets never reach logs or error bodies', () => {
  let h: Harness;
  const bodies: string[] = [];
  const extraLogs: string[][] = [];
  beforeAll(async () => {
    h = await startHarness({ env: { LOG_LEVEL: 'trace' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  const record = (res: { text: string; headers: Record<string, string> }) => {
    bodies.push(res.text ?? '', JSON.stringify(res.headers));
    return res as unknown as Res;
  };

  it('drives creates, updates and failures that carry secrets', async () => {
    const userName = uniqueName('logs.user');
    // create with a password, then PUT and PATCH it
    const created = record(
      await h.http.post('/scim/v2/Users').send(userBody(userName, { password: PASSWORD })),
    );
    expect(created.status).toBe(201);
    record(
      await h.http.put(`/scim/v2/Users/${created.body.id}`).send(userBody(userName, { password: PASSWORD })),
    );
    record(
      await h.http
        .patch(`/scim/v2/Users/${created.body.id}`)
        .send(patchBody({ op: 'replace', path: 'password', value: PASSWORD })),
    );
    record(
      await h.http
        .patch(`/scim/v2/Users/${created.body.id}`)
        .send(patchBody({ op: 'replace', value: { password: PASSWORD, active: false } })),
    );
    // a password of the wrong type, a password in a failing create, a duplicate with a password
    record(
      await h.http
        .post('/scim/v2/Users')
        .send({ schemas: [USER_SCHEMA], userName: uniqueName('logs.pw'), password: { v: PASSWORD } }),
    );
    record(
      await h.http
        .post('/scim/v2/Users')
        .send({ schemas: [USER_SCHEMA], userName: 'x'.repeat(60), password: PASSWORD }),
    );
    record(await h.http.post('/scim/v2/Users').send(userBody(userName, { password: PASSWORD })));
    record(
      await h.http
        .post('/scim/v2/Users')
        .set('Content-Type', 'application/json')
        .send(`{"password":"${PASSWORD}",`),
    );

    // bad SCIM tokens, in every shape
    for (const auth of [
      `Bearer ${WRONG_TOKEN}`,
      WRONG_TOKEN,
      `Basic ${Buffer.from(`u:${WRONG_TOKEN}`).toString('base64')}`,
      `Bearer ${TEST_TOKEN}x`,
    ]) {
      const res = record(await h.http.get('/scim/v2/Users').set('Authorization', auth));
      expect(res.status).toBe(401);
    }

    // upstream faults while a password travels
    h.emulator.setFaults([{ action: 'CreateUser', probability: 1, fault: 'InternalError' }]);
    try {
      record(
        await h.http.post('/scim/v2/Users').send(userBody(uniqueName('logs.fault'), { password: PASSWORD })),
      );
    } finally {
      h.emulator.setFaults([]);
    }

    // the bridge's credentials refused: wrong secret key, and an emulator with another secret
    const wrongSecret = variantApp(h, { secretAccessKey: OTHER_SECRET, env: { LOG_LEVEL: 'trace' } });
    const other = await startEmulator({ port: 0, secretAccessKey: OTHER_SECRET });
    const otherBridge = variantApp(h, { endpoint: other.url, env: { LOG_LEVEL: 'trace' } });
    try {
      for (const bridge of [wrongSecret, otherBridge]) {
        const res = record(
          await bridge.http
            .post('/scim/v2/Users')
            .send(userBody(uniqueName('logs.creds'), { password: PASSWORD })),
        );
        expect(res.status).toBe(502);
        record(await bridge.http.get(`/scim/v2/Users?filter=${encodeURIComponent('userName eq "a"')}`));
        extraLogs.push(bridge.logs);
      }
    } finally {
      await wrongSecret.close();
      await otherBridge.close();
      await other.close();
    }
  });

  it('the logs were written (the check below is not vacuous)', () => {
    const all = [...h.logs, ...extraLogs.flat()].join('');
    expect(h.logs.length).toBeGreaterThan(20);
    expect(all).toContain('SignatureDoesNotMatch');
    expect(all).toMatch(/"statusCode":401/);
  });

  it.each([
    ['the SCIM token', TEST_TOKEN],
    ['a presented wrong token', WRONG_TOKEN],
    ['the emulator secret key', DEV_SECRET_KEY],
    ['another secret key', OTHER_SECRET],
    ['the password', PASSWORD],
    ['the Authorization header', 'HMAC-SHA256 Credential='],
    ['a Basic credential', Buffer.from(`u:${WRONG_TOKEN}`).toString('base64')],
  ])('never contains %s', (_label, secret) => {
    for (const line of [...h.logs, ...extraLogs.flat()]) expect(line).not.toContain(secret);
    for (const body of bodies) expect(body).not.toContain(secret);
  });

  it('no Authorization header value is logged under any name', () => {
    for (const line of [...h.logs, ...extraLogs.flat()]) {
      expect(line).not.toMatch(/authorization"\s*:\s*"(?!\[redacted\])/i);
      expect(line).not.toMatch(/Bearer [\w-]{8,}/);
      expect(line).not.toMatch(/Signature=[0-9a-f]{16,}/);
    }
  });
});
