import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { type RunningEmulator, startEmulator } from '../../src/emulator/index.js';
import { Metrics } from '../../src/ops/metrics.js';
import { Readiness } from '../../src/ops/readiness.js';
import { UpstreamActivity } from '../../src/ops/upstream-activity.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import type { CloudIdentityClient } from '../../src/volcengine/client.js';
import { emulatorClient, opsApp, pingOnlyStore, sample, silentLogger } from './helpers.js';

/** Resolves once `condition` holds, checking between turns of the real event loop (socket I/O). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

describe('probes', () => {
  let emulator: RunningEmulator;
  const clients: CloudIdentityClient[] = [];
  const client = (url = emulator.url, extra = {}) => {
    const c = emulatorClient(url, extra);
    clients.push(c);
    return c;
  };
  const listUsersCalls = () => emulator.calls().ListUsers ?? 0;

  beforeAll(async () => {
    emulator = await startEmulator({ port: 0 });
  });
  afterEach(async () => {
    emulator.setFaults([]);
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await emulator?.close();
  });

  it('/healthz answers 200 without auth and touches neither the store nor CloudIdentity', async () => {
    const store = pingOnlyStore(async () => {
      throw new Error('store is down');
    });
    const { http } = opsApp({ store, client: client('http://127.0.0.1:9') });
    const before = listUsersCalls();
    for (let i = 0; i < 5; i++) {
      const res = await http.get('/healthz');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'ok' });
      expect(res.headers['cache-control']).toBe('no-store');
    }
    expect(store.pings).toBe(0);
    expect(listUsersCalls()).toBe(before);
  });

  it('/healthz turns 503 only after the store failed every check for LIVENESS_STORE_TIMEOUT_MS, and recovers', async () => {
    let storeUp = false;
    let now = 1_000_000;
    const store = pingOnlyStore(async () => {
      if (!storeUp) throw new StoreUnavailableError('PostgreSQL: connect timeout');
    });
    const api = client();
    const readiness = new Readiness({
      store,
      api,
      cacheMs: 0,
      livenessStoreTimeoutMs: 60_000,
      logger: silentLogger,
      now: () => now,
    });
    const { http } = opsApp({ store, client: api, readiness });
    expect((await http.get('/readyz')).status).toBe(503);
    now += 59_000;
    expect((await http.get('/readyz')).status).toBe(503);
    expect((await http.get('/healthz')).status, 'a short outage does not fail liveness').toBe(200);
    now += 2_000;
    const dead = await http.get('/healthz');
    expect(dead.status).toBe(503);
    expect(dead.body).toEqual({
      status: 'store_unreachable',
      reason: 'the store has not answered for 61 s (store unreachable (PostgreSQL: connect timeout))',
    });
    storeUp = true;
    expect((await http.get('/readyz')).status).toBe(200);
    expect((await http.get('/healthz')).body).toEqual({ status: 'ok' });
    // A CloudIdentity outage never fails liveness.
    emulator.setFaults([{ action: 'ListUsers', probability: 1, fault: 'reset' }]);
    expect((await http.get('/readyz')).status).toBe(503);
    now += 3_600_000;
    expect((await http.get('/readyz')).status).toBe(503);
    expect((await http.get('/healthz')).status).toBe(200);
  });

  it('/readyz is 200 when the store answers and CloudIdentity accepts the credentials', async () => {
    const store = pingOnlyStore(async () => {});
    const { http } = opsApp({ store, client: client() });
    const res = await http.get('/readyz');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({
      status: 'ready',
      checks: { store: { status: 'ok' }, upstream: { status: 'ok' } },
    });
    expect(res.body.reason).toBeUndefined();
    expect(Date.parse(res.body.checkedAt)).not.toBeNaN();
    const text = (await http.get('/metrics')).text;
    expect(sample(text, 'scim_bridge_ready')).toBe(1);
  });

  it('caches the result: a probe every few ms makes one store ping and one upstream call per period', async () => {
    const store = pingOnlyStore(async () => {});
    const { http } = opsApp({ store, client: client(), env: { READINESS_CACHE_MS: '60000' } });
    const before = listUsersCalls();
    // Concurrent probes share the one running check...
    const first = await Promise.all(Array.from({ length: 10 }, () => http.get('/readyz')));
    // ...and later ones reuse its result.
    for (let i = 0; i < 20; i++) expect((await http.get('/readyz')).status).toBe(200);
    expect(first.every((r) => r.status === 200)).toBe(true);
    expect(listUsersCalls() - before).toBe(1);
    expect(store.pings).toBe(1);
    expect(new Set(first.map((r) => r.body.checkedAt)).size).toBe(1);
  });

  it('re-checks after READINESS_CACHE_MS and notices recovery', async () => {
    let storeUp = false;
    let now = 1_000_000;
    const store = pingOnlyStore(async () => {
      if (!storeUp)
        throw Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' });
    });
    const api = client();
    // Its own clock: the cache expires when the test says, not after however long the probes took.
    const readiness = new Readiness({ store, api, cacheMs: 200, logger: silentLogger, now: () => now });
    const { http } = opsApp({ store, client: api, readiness });
    const down = await http.get('/readyz');
    expect(down.status).toBe(503);
    expect(down.body.status).toBe('not_ready');
    expect(down.body.reason).toBe('store unreachable (ECONNREFUSED)');
    // The address of the database is not for unauthenticated eyes.
    expect(down.text).not.toContain('10.1.2.3');
    storeUp = true;
    now += 199;
    expect((await http.get('/readyz')).status).toBe(503); // still cached
    now += 51;
    const up = await http.get('/readyz');
    expect(up.status).toBe(200);
    expect(store.pings).toBe(2);
  });

  it('takes READINESS_CACHE_MS from the environment', async () => {
    for (const [cacheMs, pings] of [
      ['0', 3], // every probe checks (the 5 s default would have cached)
      ['60000', 1],
    ] as const) {
      const store = pingOnlyStore(async () => {});
      const { http } = opsApp({ store, client: client(), env: { READINESS_CACHE_MS: cacheMs } });
      for (let i = 0; i < 3; i++) expect((await http.get('/readyz')).status).toBe(200);
      expect(store.pings, `READINESS_CACHE_MS=${cacheMs}`).toBe(pings);
    }
  });

  it('names the reason a store reports as unavailable (PostgreSQL or SQLite), nothing more', async () => {
    const store = pingOnlyStore(async () => {
      throw new StoreUnavailableError('PostgreSQL: ECONNREFUSED', {
        cause: Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' }),
      });
    });
    const { http } = opsApp({ store, client: client() });
    const down = await http.get('/readyz');
    expect(down.status).toBe(503);
    expect(down.body.reason).toBe('store unreachable (PostgreSQL: ECONNREFUSED)');
    expect(down.text).not.toContain('10.1.2.3');
  });

  it('is 503 with a reason when CloudIdentity rejects the credentials', async () => {
    const store = pingOnlyStore(async () => {});
    const { http } = opsApp({
      store,
      client: client(emulator.url, { secretAccessKey: 'not-the-right-secret' }),
    });
    const res = await http.get('/readyz');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({
      status: 'not_ready',
      reason: 'CloudIdentity rejected the bridge credentials (SignatureDoesNotMatch)',
      checks: { store: { status: 'ok' }, upstream: { status: 'failed' } },
    });
    expect(res.text).not.toContain('not-the-right-secret');
    expect(sample((await http.get('/metrics')).text, 'scim_bridge_ready')).toBe(0);
  });

  it('is 503 when CloudIdentity is unreachable, and lists every failed check', async () => {
    const store = pingOnlyStore(async () => {
      throw new Error('boom');
    });
    const { http } = opsApp({ store, client: client('http://127.0.0.1:9') });
    const res = await http.get('/readyz');
    expect(res.status).toBe(503);
    expect(res.body.reason).toBe('store unreachable; CloudIdentity unreachable (network)');
  });

  it('is 503 when the store ping hangs (bounded by the check timeout)', async () => {
    // The checks' timers and clock move only when the test says; sockets stay real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const store = pingOnlyStore(() => new Promise(() => {}));
    let upstreamAnswers = 0;
    const api = client(emulator.url, { observer: { onAttempt: () => upstreamAnswers++ } });
    const readiness = new Readiness({ store, api, cacheMs: 0, timeoutMs: 100, logger: silentLogger });
    const { http } = opsApp({ store, client: api, readiness });
    const probe = http.get('/readyz').then((res) => res);
    // CloudIdentity answers over real sockets while the clock stands still; then time passes.
    await until(() => upstreamAnswers === 1);
    await vi.advanceTimersByTimeAsync(5_000);
    const res = await probe;
    expect(res.status).toBe(503);
    expect(res.body.reason).toBe('store ping timed out');
    // Given up at its 100 ms, not at the 5 s default nor whenever the ping might answer.
    expect(res.body.checks.store.durationMs).toBe(100);
  });

  it('stays ready when CloudIdentity throttles: the credentials were accepted', async () => {
    emulator.setFaults([{ action: 'ListUsers', probability: 1, fault: 'FlowLimitExceeded' }]);
    const store = pingOnlyStore(async () => {});
    const { http } = opsApp({ store, client: client() });
    const res = await http.get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body.checks.upstream.detail).toMatch(/FlowLimitExceeded; credentials were not rejected/);
  });

  it('turns 503 at once when shutdown starts, without any check', async () => {
    const store = pingOnlyStore(async () => {});
    const api = client();
    const metrics = new Metrics({ defaultMetrics: false });
    const readiness = new Readiness({
      store,
      api,
      cacheMs: 60_000,
      onResult: (ready) => metrics.ready.set(ready ? 1 : 0),
    });
    const { http } = opsApp({ store, client: api, readiness, metrics });
    expect((await http.get('/readyz')).status).toBe(200);
    const calls = listUsersCalls();
    readiness.markShuttingDown();
    const res = await http.get('/readyz');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ status: 'shutting_down', reason: 'the bridge is shutting down' });
    expect(listUsersCalls()).toBe(calls);
    expect(sample((await http.get('/metrics')).text, 'scim_bridge_ready')).toBe(0);
    // Liveness is unaffected: the pod must not be restarted while it drains.
    expect((await http.get('/healthz')).status).toBe(200);
  });

  describe("CloudIdentity asked only when the bridge's own calls have not shown it usable", () => {
    const CACHE_MS = 5_000;
    /** A readiness fed by the client's observer, on a clock the test moves. */
    const setup = () => {
      const clock = { now: 1_000_000 };
      const activity = new UpstreamActivity(() => clock.now);
      const api = client(emulator.url, { observer: activity.observer });
      const store = pingOnlyStore(async () => {});
      const readiness = new Readiness({
        store,
        api,
        upstreamActivity: activity,
        cacheMs: CACHE_MS,
        logger: silentLogger,
        now: () => clock.now,
      });
      const { http } = opsApp({ store, client: api, readiness });
      const call = () => api.listGroups({ PageNumber: 1, PageSize: 1 });
      return { clock, api, http, call };
    };

    it('a busy replica makes no ListUsers of its own; an idle one one per period', async () => {
      const { clock, http, call } = setup();
      const before = listUsersCalls();
      // Two minutes of traffic (a call every 2 s), probed every second.
      for (let s = 0; s < 120; s++) {
        if (s % 2 === 0) await call();
        clock.now += 1_000;
        const res = await http.get('/readyz');
        expect(res.status).toBe(200);
        expect(res.body.checks.upstream.detail).toMatch(
          /^CloudIdentity accepted the bridge's calls \d+ ms ago$/,
        );
      }
      expect(listUsersCalls() - before).toBe(0);
      // Then a minute without calls, probed every second: one ListUsers per cache period.
      const idle = listUsersCalls();
      for (let s = 0; s < 60; s++) {
        clock.now += 1_000;
        expect((await http.get('/readyz')).status).toBe(200);
      }
      expect(listUsersCalls() - idle).toBeGreaterThanOrEqual(11);
      expect(listUsersCalls() - idle).toBeLessThanOrEqual(12);
    });

    it('an outage after the last successful call shows once that call is a period old', async () => {
      const { clock, http, call } = setup();
      await call();
      const t0 = clock.now;
      const before = listUsersCalls();
      clock.now = t0 + 1_000;
      const reused = await http.get('/readyz');
      expect(reused.status).toBe(200);
      expect(reused.body.checks.upstream.detail).toBe(
        "CloudIdentity accepted the bridge's calls 1000 ms ago",
      );
      expect(listUsersCalls()).toBe(before);
      emulator.setFaults([{ action: '*', probability: 1, fault: 'reset' }]);
      clock.now = t0 + CACHE_MS - 1;
      expect((await http.get('/readyz')).status).toBe(200);
      // The report rested on the call at t0: it expires CACHE_MS after it, not after the report.
      clock.now = t0 + CACHE_MS;
      const down = await http.get('/readyz');
      expect(down.status).toBe(503);
      expect(down.body.reason).toBe('CloudIdentity unreachable (network)');
      expect(listUsersCalls()).toBeGreaterThan(before);
    });

    it("a failing call of the bridge's own makes the next check ask CloudIdentity", async () => {
      const { clock, http, call } = setup();
      await call();
      const t0 = clock.now;
      expect((await http.get('/readyz')).status).toBe(200);
      clock.now = t0 + 3_000;
      await call();
      emulator.setFaults([{ action: '*', probability: 1, fault: 'AccessDenied' }]);
      clock.now = t0 + 3_500;
      await expect(call()).rejects.toThrow(/AccessDenied/);
      const before = listUsersCalls();
      // The success at t0 + 3 s is still within a period, but a call failed after it.
      clock.now = t0 + CACHE_MS;
      const down = await http.get('/readyz');
      expect(down.status).toBe(503);
      expect(down.body.reason).toBe('the bridge credentials lack permission for ListUsers (AccessDenied)');
      expect(listUsersCalls()).toBe(before + 1);
      // Once its calls succeed again, the next check after the cached failure says so without asking.
      emulator.setFaults([]);
      clock.now = t0 + 2 * CACHE_MS;
      await call();
      const after = listUsersCalls();
      clock.now += 1;
      expect((await http.get('/readyz')).status).toBe(200);
      expect(listUsersCalls()).toBe(after);
    });
  });

  it('answers HEAD for both probes', async () => {
    const store = pingOnlyStore(async () => {});
    const { http } = opsApp({ store, client: client() });
    expect((await http.head('/healthz')).status).toBe(200);
    expect((await http.head('/readyz')).status).toBe(200);
  });
});
