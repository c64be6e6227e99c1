// Rate limits over HTTP: SCIM per token, console sign-in per client address, the ceiling toward
// CloudIdentity; in one process and shared by two bridges on one PostgreSQL schema.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBridge, startBridge } from '../../src/bridge.js';
import { loadConfig } from '../../src/config.js';
import {
  DEV_ACCESS_KEY,
  DEV_SECRET_KEY,
  type RunningEmulator,
  startEmulator,
} from '../../src/emulator/index.js';
import { createLogger } from '../../src/logger.js';
import { Metrics } from '../../src/ops/metrics.js';
import {
  RATE_LIMIT_TABLE,
  RateLimits,
  Reserving,
  reservationSize,
  UpstreamPacer,
} from '../../src/ops/rate-limits.js';
import { type Harness, startHarness, TEST_TOKEN } from '../helpers/harness.js';
import { freshPostgresUrl } from '../helpers/postgres.js';
import { parseLogs, sample } from './helpers.js';

const OTHER_TOKEN = 'okta:other-client-token-0123456789';
const ADMIN = 'rate-limit-admin-token-0123456';
const SCIM_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

describe('SCIM requests are limited per token', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: { SCIM_BEARER_TOKENS: `entra:${TEST_TOKEN},${OTHER_TOKEN}`, SCIM_RATE_LIMIT: '1' },
      metrics: new Metrics({ defaultMetrics: false }),
    });
  });
  afterAll(() => h?.close());

  it('past SCIM_RATE_LIMIT × 10 requests in a window: 429, SCIM error body, Retry-After, metric, one log line', async () => {
    // Discovery costs no CloudIdentity call: the ten fit in one 10 s window even on a loaded machine.
    for (let i = 0; i < 10; i++)
      expect((await h.http.get('/scim/v2/ServiceProviderConfig')).status).toBe(200);
    const before = await h.upstream();
    const refused = await h.http
      .post('/scim/v2/Users')
      .send({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'flood@example.com' });
    expect(refused.status).toBe(429);
    expect(refused.headers['content-type']).toMatch(/^application\/scim\+json/);
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(10);
    expect(refused.body).toEqual({
      schemas: [SCIM_ERROR],
      status: '429',
      detail: `too many requests with this token: at most 1 per second (SCIM_RATE_LIMIT, counted over 10 s); retry after ${retryAfter} s`,
    });
    // Refused before anything happened: no CloudIdentity call, no audit record.
    expect((await h.upstream()).calls).toEqual(before.calls);
    expect(await h.store.listAudit({ limit: 10 })).toEqual([]);
    expect((await h.http.get('/scim/v2/Users?count=1')).status).toBe(429);

    const text = await h.metrics!.registry.metrics();
    expect(sample(text, 'scim_bridge_rate_limited_total', { limiter: 'scim', client: 'entra' })).toBe(2);
    const lines = parseLogs(h.logs);
    expect(lines.filter((l) => String(l.msg).startsWith('SCIM rate limit reached'))).toEqual([
      expect.objectContaining({ client: 'entra', limit: 1, windowSeconds: 10, level: 40 }),
    ]);
    expect(
      lines.filter((l) => (l.res as { statusCode?: number } | undefined)?.statusCode === 429),
    ).toHaveLength(2);
  });

  it('another token has its own count', async () => {
    const res = await supertest(h.app)
      .get('/scim/v2/Users?count=1')
      .set('Authorization', `Bearer ${OTHER_TOKEN.slice('okta:'.length)}`);
    expect(res.status).toBe(200);
  });

  it('SCIM_RATE_LIMIT=0 turns the limit off; the default is 100 per second', () => {
    expect(
      loadConfig({ SCIM_RATE_LIMIT: '0' }, () => 'generated-token-0123456789').rateLimits.scimPerSecond,
    ).toBe(0);
    expect(loadConfig({}, () => 'generated-token-0123456789').rateLimits).toEqual({
      scimPerSecond: 100,
      signinMaxFailures: 10,
      signinWindowSeconds: 900,
      upstreamMaxRps: 0,
      upstreamCooldownMs: 60_000,
    });
  });
});

describe('a shared SCIM count reserved a few points at a time (replicas on PostgreSQL)', () => {
  it('reserves a hundredth of the window, at most 20, none below 200 points', () => {
    expect([10, 199, 200, 1000, 5000, 1_000_000].map(reservationSize)).toEqual([1, 1, 2, 10, 20, 20]);
  });

  it('three replicas never admit more than the limit in a window, and refuse early at most what the others hold', async () => {
    // RateLimiterMemory counts atomically, as the PostgreSQL table does.
    const shared = new RateLimiterMemory({ keyPrefix: 'scim', points: 1000, duration: 10 });
    let calls = 0;
    const counting = new Proxy(shared, {
      get(target, prop, receiver) {
        if (prop === 'consume')
          return (key: string, points: number) => {
            calls++;
            return target.consume(key, points);
          };
        return Reflect.get(target, prop, receiver);
      },
    });
    const replicas = [0, 1, 2].map(() => new Reserving(counting, 10));
    const admitted = [0, 0, 0];
    const refusals: RateLimiterRes[] = [];
    const one = async (r: number) => {
      try {
        await replicas[r].consume('okta');
        admitted[r]++;
      } catch (e) {
        if (!(e instanceof RateLimiterRes)) throw e;
        refusals.push(e);
      }
    };
    // Concurrent bursts at every replica, past the limit.
    for (let round = 0; round < 25; round++)
      await Promise.all(Array.from({ length: 48 }, (_, i) => one(i % 3)));
    const total = admitted.reduce((a, b) => a + b, 0);
    expect(total).toBeLessThanOrEqual(1000);
    expect(total).toBeGreaterThanOrEqual(1000 - 2 * 9);
    expect(refusals.length).toBe(25 * 48 - total);
    // One statement per reservation, not per request; refusals come from memory.
    expect(calls).toBeLessThan(1000 / 10 + 10);
    // The first refusal at each replica is the one the middleware logs (points + 1).
    expect(refusals.filter((r) => r.consumedPoints === 1001).length).toBeLessThanOrEqual(3);
    expect(refusals.every((r) => r.msBeforeNext > 0)).toBe(true);
  });

  it('a count that cannot be taken fails the request it was for, and the next one asks again', async () => {
    let fail = true;
    const flaky = new RateLimiterMemory({ keyPrefix: 'scim', points: 1000, duration: 10 });
    const original = flaky.consume.bind(flaky);
    flaky.consume = (key: string | number, points?: number) =>
      fail ? Promise.reject(new Error('database down')) : original(key, points);
    const limiter = new Reserving(flaky, 10);
    await expect(limiter.consume('okta')).rejects.toThrow('database down');
    fail = false;
    await expect(limiter.consume('okta')).resolves.toBeUndefined();
  });
});

describe('console sign-in is limited per client address', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: { ADMIN_TOKENS: ADMIN, ADMIN_SIGNIN_MAX_FAILURES: '3', TRUST_PROXY: 'loopback' },
      metrics: new Metrics({ defaultMetrics: false }),
    });
  });
  afterAll(() => h?.close());

  const signIn = (token: string, from: string) =>
    supertest(h.app)
      .post('/admin/login')
      .set('Host', 'bridge.test')
      .set('Origin', 'http://bridge.test')
      .set('X-Forwarded-For', from)
      .type('form')
      .send({ token });

  it('after ADMIN_SIGNIN_MAX_FAILURES wrong tokens: 429 with Retry-After, even for the right token', async () => {
    for (let i = 0; i < 3; i++) {
      const wrong = await signIn(`wrong-token-${i}-0123456789`, '203.0.113.7');
      expect(wrong.status).toBe(303);
      expect(wrong.headers.location).toBe('/admin/login?m=invalid');
    }
    const blocked = await signIn(ADMIN, '203.0.113.7');
    expect(blocked.status).toBe(429);
    const retryAfter = Number(blocked.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(800);
    expect(retryAfter).toBeLessThanOrEqual(900);
    expect(blocked.headers['set-cookie']).toBeUndefined();
    expect(blocked.headers['content-type']).toMatch(/^text\/html/);
    expect(blocked.text).toContain('Too many failed sign-ins from your address. Try again in 15 minutes.');
    // The admin API's bearer is the same secret: refused from that address too.
    const api = await supertest(h.app)
      .get('/admin/api/reconciler')
      .set('X-Forwarded-For', '203.0.113.7')
      .set('Authorization', `Bearer ${ADMIN}`);
    expect(api.status).toBe(429);
    expect(Number(api.headers['retry-after'])).toBeGreaterThan(800);
    expect(api.body).toEqual({
      error: { code: 'too_many_failures', message: expect.stringMatching(/^too many failed sign-ins/) },
    });
    const text = await h.metrics!.registry.metrics();
    expect(sample(text, 'scim_bridge_rate_limited_total', { limiter: 'admin_signin' })).toBe(2);
    expect(
      parseLogs(h.logs).some((l) => String(l.msg).startsWith('operator console: sign-in refused, too many')),
    ).toBe(true);
  });

  it('another address is not affected; a successful sign-in clears its failures', async () => {
    for (let i = 0; i < 2; i++)
      expect((await signIn('nope-nope-nope-0123456789', '203.0.113.8')).status).toBe(303);
    const ok = await signIn(ADMIN, '203.0.113.8');
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/admin/');
    for (let i = 0; i < 2; i++)
      expect((await signIn('nope-nope-nope-0123456789', '203.0.113.8')).status).toBe(303);
    expect((await signIn(ADMIN, '203.0.113.8')).status).toBe(303);
  });

  it('wrong admin bearers count as failed sign-ins', async () => {
    const api = (token: string) =>
      supertest(h.app)
        .get('/admin/api/reconciler')
        .set('X-Forwarded-For', '203.0.113.9')
        .set('Authorization', `Bearer ${token}`);
    for (let i = 0; i < 3; i++) expect((await api('guess-guess-guess-0123456789')).status).toBe(401);
    expect((await api(ADMIN)).status).toBe(429);
    expect((await signIn(ADMIN, '203.0.113.9')).status).toBe(429);
  });
});

/** A bridge on sockets (store, in-process emulator, client with its pacer), logs captured. */
async function bridge(
  env: Record<string, string>,
): Promise<{ b: RunningBridge; logs: string[]; done(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rate-limits-'));
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const config = loadConfig(
    {
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      SCIM_BEARER_TOKENS: TEST_TOKEN,
      RECONCILE_INTERVAL_MS: '0',
      ...env,
    },
    () => TEST_TOKEN,
  );
  const logger = createLogger({ level: 'debug', logPii: false, destination });
  const b = await startBridge(config, logger);
  return {
    b,
    logs,
    async done() {
      await b.close().catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * With a ceiling of n calls per second counted in fixed one-second windows, calls i and i + 2n are
 * at least two windows apart, so at least one second apart. A lower bound: a slow machine meets it.
 */
function expectCeiling(startedAt: number[], n: number): void {
  const sorted = [...startedAt].sort((a, b) => a - b);
  for (let i = 0; i + 2 * n < sorted.length; i++)
    expect(sorted[i + 2 * n] - sorted[i]).toBeGreaterThanOrEqual(999);
}

describe('the ceiling toward CloudIdentity (VOLCENGINE_MAX_RPS)', () => {
  it('paces every call; FlowLimitExceeded halves it', async () => {
    const { b, logs, done } = await bridge({
      VOLCENGINE_MAX_RPS: '2',
      VOLCENGINE_THROTTLE_COOLDOWN_MS: '60000',
    });
    try {
      const started: number[] = [];
      b.emulator!.setFaults([]);
      const original = b.metrics.clientObserver.onAttempt;
      b.metrics.clientObserver.onAttempt = (e) => {
        started.push(Date.now() - e.durationMs);
        original?.(e);
      };
      const http = supertest(b.url).get.bind(supertest(b.url));
      const gets = Array.from({ length: 7 }, () =>
        http('/scim/v2/Users?count=1').set('Authorization', `Bearer ${TEST_TOKEN}`),
      );
      for (const res of await Promise.all(gets)) expect(res.status).toBe(200);
      expect(started.length).toBeGreaterThanOrEqual(7);
      expectCeiling(started, 2);
      let text = (await b.metrics.render()).body;
      expect(sample(text, 'scim_bridge_upstream_rate_ceiling')).toBe(2);

      // One throttled answer: retried, and the ceiling is halved.
      b.emulator!.setFaults([{ action: 'ListUsers', probability: 1, fault: 'FlowLimitExceeded', times: 1 }]);
      const throttled = await http('/scim/v2/Users?count=1').set('Authorization', `Bearer ${TEST_TOKEN}`);
      expect(throttled.status).toBe(200);
      expect(b.rateLimits.upstream!.ceiling).toBe(1);
      text = (await b.metrics.render()).body;
      expect(sample(text, 'scim_bridge_upstream_rate_ceiling')).toBe(1);
      expect(
        parseLogs(logs).filter((l) => String(l.msg).startsWith('CloudIdentity answered FlowLimitExceeded')),
      ).toEqual([expect.objectContaining({ ceiling: 1, configured: 2, cooldownMs: 60_000, level: 40 })]);
    } finally {
      await done();
    }
  });

  it('restores the configured ceiling once VOLCENGINE_THROTTLE_COOLDOWN_MS has passed since the last FlowLimitExceeded', async () => {
    let clock = 1_000_000;
    const metrics = new Metrics({ defaultMetrics: false });
    const logs: string[] = [];
    const logger = createLogger({
      level: 'info',
      logPii: false,
      destination: new Writable({
        write(chunk, _enc, cb) {
          logs.push(String(chunk));
          cb();
        },
      }),
    });
    const pacer = new UpstreamPacer({
      full: new RateLimiterMemory({ keyPrefix: 'u', points: 10, duration: 1 }),
      lowered: new RateLimiterMemory({ keyPrefix: 'u', points: 5, duration: 1 }),
      cooldownMs: 1_000,
      metrics,
      logger,
      now: () => clock,
    });
    const ceiling = async () => sample(await metrics.registry.metrics(), 'scim_bridge_upstream_rate_ceiling');
    expect(await ceiling()).toBe(10);
    pacer.throttled();
    expect(pacer.ceiling).toBe(5);
    expect(await ceiling()).toBe(5);
    clock += 600;
    pacer.throttled(); // a second answer extends the cooldown: 1 s from now
    clock += 600;
    expect(await pacer.acquire(Number.POSITIVE_INFINITY)).toBe(true);
    expect(pacer.ceiling).toBe(5);
    clock += 500;
    expect(pacer.ceiling).toBe(10);
    expect(await pacer.acquire(Number.POSITIVE_INFINITY)).toBe(true);
    expect(await ceiling()).toBe(10);
    const lines = parseLogs(logs).map((l) => l.msg);
    expect(
      lines.filter((m) => String(m).startsWith('CloudIdentity answered FlowLimitExceeded')),
    ).toHaveLength(1);
    expect(lines).toContain('CloudIdentity rate ceiling restored to VOLCENGINE_MAX_RPS');
  });

  it('calls queued at once past the ceiling wait their turn, in order, and are counted', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const limits = RateLimits.inMemory(
      {
        scimPerSecond: 0,
        signinMaxFailures: 1,
        signinWindowSeconds: 1,
        upstreamMaxRps: 2,
        upstreamCooldownMs: 1000,
      },
      { metrics },
    );
    const order: number[] = [];
    const started: number[] = [];
    await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        expect(await limits.upstream!.acquire(Date.now() + 20_000)).toBe(true);
        order.push(i);
        started.push(Date.now());
      }),
    );
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expectCeiling(started, 2);
    expect(sample(await metrics.registry.metrics(), 'scim_bridge_upstream_paced_total')).toBe(3);
    await limits.close();
  });

  it('a call that cannot get a slot before its deadline fails as a deadline, never waits past it', async () => {
    const limits = RateLimits.inMemory({
      scimPerSecond: 0,
      signinMaxFailures: 1,
      signinWindowSeconds: 1,
      upstreamMaxRps: 1,
      upstreamCooldownMs: 1000,
    });
    const pacer = limits.upstream!;
    expect(await pacer.acquire(Date.now() + 5_000)).toBe(true);
    // The second's one slot is taken: a deadline 50 ms away passes first.
    expect(await pacer.acquire(Date.now() + 50)).toBe(false);
    await limits.close();
  });
});

describe('limits shared through PostgreSQL hold for the whole deployment', async () => {
  const pg = await freshPostgresUrl('ratelimits');
  const skip = 'skip' in pg ? pg.skip : undefined;
  if (skip) console.warn(`[skip] PostgreSQL rate limits not tested: ${skip}`);

  it.skipIf(skip)(
    'two bridges on one schema: one SCIM count per token, one sign-in count per address',
    async () => {
      if ('skip' in pg) return;
      // Replicas share one CloudIdentity (one standalone emulator): a store is bound to one.
      const emulator: RunningEmulator = await startEmulator({ port: 0 });
      const env = {
        DATABASE_URL: pg.url,
        VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
        VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
        VOLCENGINE_ENDPOINT: emulator.url,
        SCIM_RATE_LIMIT: '1',
        ADMIN_TOKENS: ADMIN,
        ADMIN_SIGNIN_MAX_FAILURES: '3',
        TRUST_PROXY: 'loopback',
      };
      const a = await bridge(env);
      const b = await bridge(env);
      try {
        const get = (x: RunningBridge) =>
          supertest(x.url).get('/scim/v2/ServiceProviderConfig').set('Authorization', `Bearer ${TEST_TOKEN}`);
        for (let i = 0; i < 5; i++) expect((await get(a.b)).status).toBe(200);
        for (let i = 0; i < 5; i++) expect((await get(b.b)).status).toBe(200);
        // Ten in this window across both replicas: the eleventh is refused at either.
        const refused = await get(a.b);
        expect(refused.status).toBe(429);
        expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect((await get(b.b)).status).toBe(429);
        expect(a.b.rateLimits.shared).toBe(true);

        const signIn = (x: RunningBridge, token: string) =>
          supertest(x.url)
            .post('/admin/login')
            .set('Origin', x.url)
            .set('X-Forwarded-For', '198.51.100.4')
            .type('form')
            .send({ token });
        expect((await signIn(a.b, 'wrong-wrong-wrong-0123456789')).status).toBe(303);
        expect((await signIn(b.b, 'wrong-wrong-wrong-0123456789')).status).toBe(303);
        expect((await signIn(a.b, 'wrong-wrong-wrong-0123456789')).status).toBe(303);
        expect((await signIn(b.b, ADMIN)).status).toBe(429);
        expect((await signIn(a.b, ADMIN)).status).toBe(429);
      } finally {
        await a.done();
        await b.done();
        await emulator.close();
      }
    },
  );

  it.skipIf(skip)(
    'two limiter instances on one schema share the CloudIdentity ceiling; the table is in the bridge schema',
    async () => {
      if ('skip' in pg) return;
      const settings = {
        scimPerSecond: 0,
        signinMaxFailures: 10,
        signinWindowSeconds: 60,
        upstreamMaxRps: 2,
        upstreamCooldownMs: 1000,
      };
      const one = await RateLimits.open(settings, { databaseUrl: pg.url });
      const two = await RateLimits.open(settings, { databaseUrl: pg.url });
      try {
        const started: number[] = [];
        const take = async (limits: RateLimits) => {
          expect(await limits.upstream!.acquire(Date.now() + 20_000)).toBe(true);
          started.push(Date.now());
        };
        await Promise.all([
          ...Array.from({ length: 4 }, () => take(one)),
          ...Array.from({ length: 3 }, () => take(two)),
        ]);
        expectCeiling(started, 2);
        const client = new (await import('pg')).default.Client({ connectionString: pg.url });
        await client.connect();
        try {
          // In the bridge's schema, not in public (other test files' schemas may hold one too).
          const { rows } = await client.query(
            `SELECT table_schema FROM information_schema.tables
              WHERE table_name = $1 AND table_schema IN ($2, 'public')`,
            [RATE_LIMIT_TABLE, pg.schema],
          );
          expect(rows).toEqual([{ table_schema: pg.schema }]);
        } finally {
          await client.end();
        }
      } finally {
        await one.close();
        await two.close();
      }
    },
  );

  it.skipIf(skip)(
    'a table that cannot be created stops the start with a message naming DATABASE_URL',
    async () => {
      if ('skip' in pg) return;
      const url = new URL(pg.url);
      url.searchParams.set('options', '-c search_path=no_such_schema_for_rate_limits');
      await expect(
        RateLimits.open(
          {
            scimPerSecond: 1,
            signinMaxFailures: 1,
            signinWindowSeconds: 1,
            upstreamMaxRps: 0,
            upstreamCooldownMs: 1000,
          },
          { databaseUrl: url.toString() },
        ),
      ).rejects.toThrow(
        /^DATABASE_URL: cannot create the rate-limit table rate_limits in the store's schema \(3F000: /,
      );
    },
  );

  afterAll(async () => {
    if (!('skip' in pg)) await pg.drop();
  });
});
