import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../../src/check-config.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import {
  DEV_ACCESS_KEY,
  DEV_SECRET_KEY,
  type RunningEmulator,
  startEmulator,
} from '../../src/emulator/index.js';
import { runMain } from './process.js';

const TOKEN = 'scim-token-0123456789abcdef';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env, () => 'generated');
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('configuration', () => {
  it('has a default for every optional variable', () => {
    const c = loadConfig({}, () => 'generated-token-0123456789');
    expect(c).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      logLevel: 'info',
      logPii: false,
      production: false,
      scimTokenGenerated: true,
      region: 'cn-beijing',
      endpoint: 'https://open.volcengineapi.com',
      upstreamAttemptTimeoutMs: 10_000,
      upstreamMaxAttempts: 4,
      upstreamMutationConcurrency: 0,
      upstreamConnections: 32,
      requestDeadlineMs: 45_000,
      deactivateAction: 'delete',
      dataDir: './data',
      maxBodyBytes: 1_048_576,
      maxPageSize: 200,
      filterScanLimit: 2_000,
      shutdownGraceMs: 20_000,
      shutdownDelayMs: 0,
      readinessCacheMs: 5_000,
      httpHeadersTimeoutMs: 20_000,
      httpKeepAliveTimeoutMs: 65_000,
      emulatorLatencyMs: 0,
    });
    expect(c.volcengine).toBeUndefined();
    expect(c.databaseUrl).toBeUndefined();
    expect(c.metricsToken).toBeUndefined();
  });

  it('reconciler settings: defaults, ranges, and the 60 s settle bound', () => {
    expect(loadConfig({}, () => 'generated-token-0123456789').reconcile).toEqual({
      intervalMs: 5_000,
      batch: 50,
      backoffMaxMs: 30_000,
      driftIntervalMs: 300_000,
      driftBudget: 100,
    });
    expect(problems({ RECONCILE_INTERVAL_MS: '0', RECONCILE_DRIFT_INTERVAL_MS: '0' })).toEqual([]);
    expect(problems({ RECONCILE_BATCH: '0' })).toEqual([expect.stringMatching(/^RECONCILE_BATCH: /)]);
    expect(problems({ RECONCILE_INTERVAL_MS: '30000', RECONCILE_BACKOFF_MAX_MS: '30000' })).toEqual([
      expect.stringMatching(/^RECONCILE_BACKOFF_MAX_MS: .*60 s/),
    ]);
  });

  it('lists every problem in one message', () => {
    const env = {
      PORT: 'eighty',
      LOG_LEVEL: 'loud',
      LOG_PII: 'maybe',
      VOLCENGINE_ACCESS_KEY: 'AKLTsomething',
      VOLCENGINE_ENDPOINT: 'not a url',
      REQUEST_DEADLINE_MS: '90000',
      DEACTIVATE_ACTION: 'archive',
      DATABASE_URL: 'mysql://u:hunter2@db/x',
      METRICS_TOKEN: 'short',
      READINESS_CACHE_MS: '-1',
      SHUTDOWN_GRACE_MS: 'soon',
      HTTP_KEEP_ALIVE_TIMEOUT_MS: '10',
    };
    let error: ConfigError | undefined;
    try {
      loadConfig(env, () => 'x');
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const vars = [
      'PORT',
      'LOG_LEVEL',
      'LOG_PII',
      'VOLCENGINE_SECRET_KEY',
      'VOLCENGINE_ENDPOINT',
      'REQUEST_DEADLINE_MS',
      'DEACTIVATE_ACTION',
      'DATABASE_URL',
      'METRICS_TOKEN',
      'READINESS_CACHE_MS',
      'SHUTDOWN_GRACE_MS',
      'HTTP_KEEP_ALIVE_TIMEOUT_MS',
      'SCIM_BEARER_TOKENS',
    ];
    for (const v of vars) expect(error!.message).toMatch(new RegExp(`^  - ${v}: `, 'm'));
    expect(error!.message.startsWith('invalid configuration:\n')).toBe(true);
    // A connection string may carry a password: never echoed.
    expect(error!.message).not.toContain('hunter2');
  });

  it('accepts a complete production configuration', () => {
    expect(
      problems({
        NODE_ENV: 'production',
        SCIM_BEARER_TOKENS: `${TOKEN},second-token-0123456789`,
        VOLCENGINE_ACCESS_KEY: 'AKLTabc',
        VOLCENGINE_SECRET_KEY: 'secret',
        DATABASE_URL: 'postgresql://bridge:pw@db:5432/bridge',
        METRICS_TOKEN: 'metrics-token-0123456789',
        PUBLIC_BASE_URL: 'https://scim.example.com/',
      }),
    ).toEqual([]);
  });
});

describe('--check-config', () => {
  let emulator: RunningEmulator;
  const good = () => ({
    SCIM_BEARER_TOKENS: TOKEN,
    VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
    VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
    VOLCENGINE_ENDPOINT: emulator.url,
  });
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0 });
  });
  afterAll(async () => {
    await emulator?.close();
  });

  it('passes with valid config and credentials CloudIdentity accepts (one signed ListUsers)', async () => {
    const before = emulator.calls().ListUsers ?? 0;
    const out = await checkConfig(good());
    expect(out.ok).toBe(true);
    expect(out.lines[0]).toMatch(
      /^volc-scim-bridge --check-config: OK, configuration valid and CloudIdentity accepted the credentials \(ListUsers at http:\/\/127\.0\.0\.1:\d+, region cn-beijing, access key AKLTem…, RequestId \w+\)$/,
    );
    expect(out.lines.join('\n')).not.toContain(DEV_SECRET_KEY);
    expect((emulator.calls().ListUsers ?? 0) - before).toBe(1);
  });

  it('fails when CloudIdentity rejects the credentials', async () => {
    const out = await checkConfig({ ...good(), VOLCENGINE_SECRET_KEY: 'wrong-secret' });
    expect(out.ok).toBe(false);
    expect(out.lines[0]).toMatch(
      /FAILED, configuration valid but CloudIdentity rejected the bridge credentials \(SignatureDoesNotMatch\) .*RequestId \w+\); check VOLCENGINE_ACCESS_KEY/,
    );
    expect(out.lines.join('\n')).not.toContain('wrong-secret');
  });

  it('fails when CloudIdentity is unreachable', async () => {
    const out = await checkConfig(
      { ...good(), VOLCENGINE_ENDPOINT: 'http://127.0.0.1:9' },
      { timeoutMs: 3_000 },
    );
    expect(out.ok).toBe(false);
    expect(out.lines[0]).toContain('CloudIdentity unreachable (network)');
  });

  it('fails on invalid configuration, listing every problem', async () => {
    const out = await checkConfig({ PORT: '-1', LOG_LEVEL: 'loud' });
    expect(out.ok).toBe(false);
    expect(out.lines[0]).toMatch(/FAILED, invalid configuration:\n {2}- PORT: .*\n {2}- LOG_LEVEL: /);
  });

  it('refuses production without credentials, allows the emulator in development', async () => {
    expect((await checkConfig({ NODE_ENV: 'production', SCIM_BEARER_TOKENS: TOKEN })).ok).toBe(false);
    const dev = await checkConfig({});
    expect(dev.ok).toBe(true);
    expect(dev.lines[0]).toContain('in-process CloudIdentity emulator');
    expect(dev.lines.join('\n')).toContain('SCIM_BEARER_TOKENS is not set');
  });

  it('main.ts --check-config exits 0 / 1 with one clear line', async () => {
    const ok = await runMain(['--check-config'], good());
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^volc-scim-bridge --check-config: OK, /);
    const bad = await runMain(['--check-config'], { ...good(), VOLCENGINE_SECRET_KEY: 'wrong-secret' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^volc-scim-bridge --check-config: FAILED, .*SignatureDoesNotMatch/);
    const invalid = await runMain(['--check-config'], { PORT: 'x', DATABASE_URL: 'nope' });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/PORT: [\s\S]*DATABASE_URL: must be a postgres/);
  });

  it('main.ts without the flag refuses to start on invalid configuration and says why', async () => {
    const out = await runMain([], { PORT: 'x', LOG_LEVEL: 'loud' });
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/invalid configuration:\n {2}- PORT: .*\n {2}- LOG_LEVEL: /);
  });
});

describe('MAX_MEMBERS_PER_REQUEST and TRUST_PROXY (issue 11)', () => {
  const load = (env: Record<string, string>) => loadConfig(env, () => 'generated-token-0123456789');

  it('defaults: 1000 members per request, no proxy trusted', () => {
    expect(load({})).toMatchObject({ maxMembersPerRequest: 1000, trustProxy: false });
    expect(load({ MAX_MEMBERS_PER_REQUEST: '5000' }).maxMembersPerRequest).toBe(5000);
    expect(problems({ MAX_MEMBERS_PER_REQUEST: '0' })[0]).toMatch(/^MAX_MEMBERS_PER_REQUEST: /);
    expect(problems({ MAX_MEMBERS_PER_REQUEST: 'lots' })[0]).toMatch(/^MAX_MEMBERS_PER_REQUEST: /);
  });

  it('TRUST_PROXY takes false, true, a hop count or a list of addresses, CIDRs and names', () => {
    expect(load({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(load({ TRUST_PROXY: ' ' }).trustProxy).toBe(false);
    expect(load({ TRUST_PROXY: 'TRUE' }).trustProxy).toBe(true);
    expect(load({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(load({ TRUST_PROXY: 'Loopback, 10.0.0.0/8,fd00::/8, 192.168.1.7' }).trustProxy).toEqual([
      'loopback',
      '10.0.0.0/8',
      'fd00::/8',
      '192.168.1.7',
    ]);
  });

  it('anything else is refused naming TRUST_PROXY', () => {
    for (const value of [
      'yes',
      '10.0.0.0/33',
      '300.1.1.1',
      'proxy.internal',
      '10.0.0.1/8/1',
      '99',
      '1.2.3.4,',
    ]) {
      const found = problems({ TRUST_PROXY: value });
      expect(found, value).toHaveLength(1);
      expect(found[0], value).toMatch(/^TRUST_PROXY: /);
    }
  });
});
