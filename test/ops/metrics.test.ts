import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../../src/emulator/index.js';
import { instrumentStore, Metrics } from '../../src/ops/metrics.js';
import type { BridgeStore } from '../../src/store/types.js';
import { type Harness, startHarness, TEST_TOKEN } from '../helpers/harness.js';
import { emulatorClient, opsApp, pingOnlyStore, sample } from './helpers.js';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const METRICS_TOKEN = 'metrics-token-0123456789';

describe('/metrics after traffic', () => {
  let h: Harness;
  let text: string;
  let userId: string;
  const userName = 'metrics.alice@example.com';

  beforeAll(async () => {
    h = await startHarness({
      metrics: new Metrics(),
      env: { METRICS_TOKEN, REQUEST_DEADLINE_MS: '1000' },
    });
    const created = await h.http
      .post('/scim/v2/Users')
      .send({ schemas: [USER], userName, emails: [{ value: userName, primary: true }] });
    expect(created.status).toBe(201);
    userId = created.body.id;
    expect((await h.http.get(`/scim/v2/Users/${userId}`)).status).toBe(200);
    expect((await h.http.get('/scim/v2/Users/3f1c0000-0000-4000-8000-000000000000')).status).toBe(404);
    expect(
      (await h.http.get(`/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${userName}"`)}`)).status,
    ).toBe(200);
    expect((await h.http.get('/scim/v2/Users').set('Authorization', 'Bearer nope')).status).toBe(401);
    expect((await h.http.get('/scim/v2/Users/some-id-123').set('Authorization', 'Bearer nope')).status).toBe(
      401,
    );
    expect((await h.http.get('/scim/v2/no/such/thing-42')).status).toBe(404);
    // One throttled attempt, then success: a retry.
    h.emulator.setFaults([{ action: 'ListUsers', probability: 1, fault: 'InternalError', times: 1 }]);
    expect((await h.http.get('/scim/v2/Users?count=1')).status).toBe(200);
    // An upstream slower than REQUEST_DEADLINE_MS (1 s): the deadline is hit, 504.
    h.emulator.setFaults([
      { action: 'GetUser', probability: 1, fault: 'latency', latencyMs: 1_500, times: 1 },
    ]);
    const slow = await h.http.get(`/scim/v2/Users/${userId}`);
    expect(slow.status).toBe(504);
    h.emulator.setFaults([]);
    text = (await h.http.get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`)).text;
  });
  afterAll(async () => {
    await h?.close();
  });

  it('is Prometheus text', async () => {
    const res = await h.http.get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.text).toMatch(/^# HELP scim_bridge_http_request_duration_seconds /m);
    expect(res.text).toMatch(/^# TYPE scim_bridge_http_request_duration_seconds histogram$/m);
  });

  it('counts SCIM requests by method, route template and status', () => {
    const count = (method: string, route: string, status: string) =>
      sample(text, 'scim_bridge_http_request_duration_seconds_count', { method, route, status });
    expect(count('POST', '/scim/v2/Users', '201')).toBe(1);
    expect(count('GET', '/scim/v2/Users/:id', '200')).toBe(1);
    expect(count('GET', '/scim/v2/Users/:id', '404')).toBe(1);
    expect(count('GET', '/scim/v2/Users/:id', '504')).toBe(1);
    expect(count('GET', '/scim/v2/Users', '200')).toBe(2);
    // Rejected before routing, still labelled by template rather than by raw path.
    expect(count('GET', '/scim/v2/Users', '401')).toBe(1);
    expect(count('GET', '/scim/v2/Users/:id', '401')).toBe(1);
    expect(count('GET', 'unmatched', '404')).toBe(1);
    expect(text).toMatch(/scim_bridge_http_request_duration_seconds_bucket\{le="0\.005",method="POST"/);
  });

  it('never puts ids, user names or other client-chosen values into labels', () => {
    const labels = text
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
    for (const value of [userId, userName, 'metrics.alice', '3f1c0000', 'some-id-123', 'thing-42', 'nope']) {
      expect(labels).not.toContain(value);
    }
  });

  it('times upstream attempts by Action and outcome, and counts retries and deadline hits', () => {
    const attempts = (action: string, outcome: string) =>
      sample(text, 'scim_bridge_upstream_request_duration_seconds_count', { action, outcome });
    expect(attempts('CreateUser', 'ok')).toBe(1);
    expect(attempts('ListUsers', 'InternalError')).toBe(1);
    expect(attempts('ListUsers', 'ok')).toBeGreaterThanOrEqual(2);
    expect(attempts('GetUser', 'deadline')).toBe(1);
    expect(
      sample(text, 'scim_bridge_upstream_retries_total', { action: 'ListUsers', reason: 'InternalError' }),
    ).toBe(1);
    expect(sample(text, 'scim_bridge_upstream_deadline_exceeded_total', { action: 'GetUser' })).toBe(1);
  });

  it('times store operations', () => {
    const ops = (operation: string) =>
      sample(text, 'scim_bridge_store_operation_duration_seconds_count', { operation, outcome: 'ok' });
    // Writes go through units of work (one commit each).
    expect(ops('commit')).toBeGreaterThanOrEqual(1);
    // A GET of one user reads its record and groups in one query.
    expect(ops('getUserWithGroups')).toBeGreaterThanOrEqual(1);
  });

  it('includes default process metrics and build info', () => {
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(text).toMatch(/^scim_bridge_build_info\{version="\d+\.\d+\.\d+",node_version="v20\./m);
  });

  it('with METRICS_TOKEN, refuses scrapes without the right bearer token (SCIM error body, 401)', async () => {
    const none = await h.http.get('/metrics').set('Authorization', '');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(none.headers['content-type']).toMatch(/^application\/scim\+json/);
    // The SCIM token is not the metrics token.
    const wrong = await h.http.get('/metrics').set('Authorization', `Bearer ${TEST_TOKEN}`);
    expect(wrong.status).toBe(401);
    expect(wrong.text).not.toContain('scim_bridge_');
  });
});

describe('metrics isolation', () => {
  it('two apps in one process have separate registries', async () => {
    const emulator = await startEmulator({ port: 0 });
    const c1 = emulatorClient(emulator.url);
    const c2 = emulatorClient(emulator.url);
    try {
      const a = opsApp({ store: pingOnlyStore(async () => {}), client: c1, metrics: new Metrics() });
      const b = opsApp({ store: pingOnlyStore(async () => {}), client: c2, metrics: new Metrics() });
      await a.http.get('/healthz');
      await a.http.get('/healthz');
      await b.http.get('/healthz');
      const count = (t: string) =>
        sample(t, 'scim_bridge_http_request_duration_seconds_count', {
          method: 'GET',
          route: '/healthz',
          status: '200',
        });
      expect(count((await a.http.get('/metrics')).text)).toBe(2);
      expect(count((await b.http.get('/metrics')).text)).toBe(1);
      // Without METRICS_TOKEN the endpoint is open.
      expect((await b.http.get('/metrics')).status).toBe(200);
    } finally {
      await c1.close();
      await c2.close();
      await emulator.close();
    }
  });

  it('the timed store times every method (class, inherited, own), failures too, and keeps the store working', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    class Base {
      async getUser(_id: string): Promise<null> {
        throw new Error('not implemented');
      }
    }
    class Fake extends Base {
      readonly lockResource = async () => async () => {};
      pings = 0;
      async ping(): Promise<void> {
        this.pings++;
        throw new Error('down');
      }
      writeFailureReason(): string | null {
        return null;
      }
    }
    const fake = new Fake();
    const store = instrumentStore(fake as unknown as BridgeStore, metrics);
    await expect(store.ping()).rejects.toThrow('down');
    await expect(store.getUser('x')).rejects.toThrow(/not implemented/);
    await (await store.lockResource!('k'))();
    expect(store.writeFailureReason?.()).toBeNull();
    // Methods run on the store itself.
    expect(fake.pings).toBe(1);
    const text = (await metrics.render()).body;
    const count = (operation: string, outcome: string) =>
      sample(text, 'scim_bridge_store_operation_duration_seconds_count', { operation, outcome });
    expect(count('ping', 'error')).toBe(1);
    expect(count('getUser', 'error')).toBe(1);
    expect(count('lockResource', 'ok')).toBe(1);
    expect(count('writeFailureReason', 'ok')).toBe(1);
  });
});
