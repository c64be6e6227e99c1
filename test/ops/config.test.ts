import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../../src/check-config.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import {
  DEV_ACCESS_KEY,
  DEV_SECRET_KEY,
  type RunningEmulator,
  startEmulator,
} from '../../src/emulator/index.js';
import { httpRequest, runMain, spawnBridge } from './process.js';

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
    expect(loadConfig({}, () => 'generated-token-0123456789')).toMatchObject({
      storeLockLeaseMs: 15_000,
      livenessStoreTimeoutMs: 120_000,
    });
    expect(problems({ RECONCILE_INTERVAL_MS: '0', RECONCILE_DRIFT_INTERVAL_MS: '0' })).toEqual([]);
    expect(problems({ RECONCILE_INTERVAL_MS: '10000', STORE_LOCK_LEASE_MS: '50000' })).toEqual([
      expect.stringMatching(/^STORE_LOCK_LEASE_MS: .*60 s/),
    ]);
    expect(problems({ STORE_LOCK_LEASE_MS: '500' })).toEqual([
      expect.stringMatching(/^STORE_LOCK_LEASE_MS: /),
    ]);
    expect(problems({ RECONCILE_BATCH: '0' })).toEqual([expect.stringMatching(/^RECONCILE_BATCH: /)]);
    expect(problems({ RECONCILE_INTERVAL_MS: '30000', RECONCILE_BACKOFF_MAX_MS: '30000' })).toEqual([
      expect.stringMatching(/^RECONCILE_BACKOFF_MAX_MS: .*60 s/),
    ]);
  });

  it('a variable with its own problem is reported once, not again by the rules that read it', () => {
    expect(problems({ RECONCILE_INTERVAL_MS: '99999' })).toEqual([
      'RECONCILE_INTERVAL_MS: must be a whole number from 0 to 60000 (got "99999")',
    ]);
    expect(
      problems({ VOLCENGINE_ACCESS_KEY: 'AKLTx', VOLCENGINE_SECRET_KEY_FILE: '/nonexistent/sk' }),
    ).toEqual([
      'VOLCENGINE_SECRET_KEY_FILE: cannot read /nonexistent/sk (ENOENT)',
      'SCIM_BEARER_TOKENS: real Volcengine credentials are set but no SCIM bearer token: refusing to expose CloudIdentity without authentication',
    ]);
    // The rules still run beside an unrelated problem.
    expect(
      problems({ PORT: 'x', RECONCILE_INTERVAL_MS: '30000', RECONCILE_BACKOFF_MAX_MS: '30000' }),
    ).toEqual([
      'PORT: must be a whole number from 0 to 65535 (got "x")',
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

  it('refuses a number variable that is set but empty, instead of 0 (PORT= would listen on a random port)', () => {
    const found = problems({ PORT: '', SHUTDOWN_DELAY_MS: ' ' });
    expect(found).toEqual([
      'PORT: is set but empty; unset it for the default (8080) or give a whole number from 0 to 65535',
      'SHUTDOWN_DELAY_MS: is set but empty; unset it for the default (0) or give a whole number from 0 to 120000',
    ]);
    for (const bad of ['1e3', '0x50', '80.5', '+80', '-1', '70000'])
      expect(problems({ PORT: bad }), bad).toEqual([
        `PORT: must be a whole number from 0 to 65535 (got ${JSON.stringify(bad)})`,
      ]);
    expect(loadConfig({ PORT: ' 80 ' }, () => 'x').port).toBe(80);
    expect(loadConfig({ PORT: '0' }, () => 'x').port).toBe(0);
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
  // Each check reads its own empty DATA_DIR: the store is part of what --check-config checks.
  const good = () => ({
    DATA_DIR: mkdtempSync(join(tmpdir(), 'check-config-')),
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

  it('passes with valid config and credentials CloudIdentity accepts: a verdict line, then indented details', async () => {
    const before = emulator.calls();
    const env = good();
    const out = await checkConfig(env);
    expect(out.ok).toBe(true);
    expect(out.lines[0]).toMatch(
      /^volc-scim-bridge --check-config: OK, configuration valid and CloudIdentity accepted the credentials \(ListUsers at http:\/\/127\.0\.0\.1:\d+, region cn-beijing, access key AKLTem…, RequestId \w+\)$/,
    );
    expect(out.lines.slice(1)).toEqual([
      '  permissions: ListUsers, GetUser, ListGroups, GetGroup, ListGroupMembers allowed',
      '  permissions: CreateUser, UpdateUser, DeleteUser, CreateGroup, UpdateGroup, DeleteGroup, AddUserToGroup, RemoveUserFromGroup not verified (no call without side effects)',
      `  note: no DATABASE_URL; the embedded store in DATA_DIR=${env.DATA_DIR} allows one replica only`,
      `  store: embedded store: a new store will be created in DATA_DIR ${env.DATA_DIR}`,
    ]);
    expect(out.lines.join('\n')).not.toContain(DEV_SECRET_KEY);
    // Read-only calls only, one each; nothing is written.
    const after = emulator.calls();
    const delta = Object.fromEntries(
      Object.entries(after)
        .map(([action, n]) => [action, n - (before[action] ?? 0)])
        .filter(([, n]) => n !== 0),
    );
    expect(delta).toEqual({ ListUsers: 1, GetUser: 1, ListGroups: 1, GetGroup: 1, ListGroupMembers: 1 });
  });

  it('names a read permission the access key lacks (emulator refuses GetGroup for this key)', async () => {
    emulator.setFaults([
      { action: 'GetGroup', probability: 1, fault: 'AccessDenied', accessKey: DEV_ACCESS_KEY },
    ]);
    try {
      const out = await checkConfig(good());
      expect(out.ok).toBe(false);
      expect(out.lines[0]).toMatch(
        /^volc-scim-bridge --check-config: FAILED, configuration valid and CloudIdentity accepted the credentials \(ListUsers at .*\), but the credentials lack permission for GetGroup; see the README section "Volcengine credentials"$/,
      );
      expect(out.lines).toContain('  permissions: ListUsers, GetUser, ListGroups, ListGroupMembers allowed');
      expect(
        out.lines.some((l) =>
          /^ {2}permissions: GetGroup DENIED \(AccessDenied, RequestId \w+\); add cloudidentity:GetGroup to the policy$/.test(
            l,
          ),
        ),
      ).toBe(true);
    } finally {
      emulator.setFaults([]);
    }
  });

  it('ListUsers refused: FAILED on the first line, naming the permission', async () => {
    emulator.setFaults([{ action: 'ListUsers', probability: 1, fault: 'AccessDenied' }]);
    try {
      const out = await checkConfig(good());
      expect(out.ok).toBe(false);
      expect(out.lines[0]).toMatch(
        /FAILED, configuration valid but the bridge credentials lack permission for ListUsers \(AccessDenied\)/,
      );
    } finally {
      emulator.setFaults([]);
    }
  });

  it('a rule for another access key does not refuse this one', async () => {
    emulator.setFaults([
      { action: '*', probability: 1, fault: 'AccessDenied', accessKey: 'AKLTsomeoneelse' },
    ]);
    try {
      expect((await checkConfig(good())).ok).toBe(true);
    } finally {
      emulator.setFaults([]);
    }
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

  it('fails on a store npm start would refuse, naming the setting, and reads the store without changing it', async () => {
    // A DATA_DIR bound to the in-process emulator, checked with real credentials.
    const trial = mkdtempSync(join(tmpdir(), 'check-config-'));
    const { openStore } = await import('../../src/store/index.js');
    const store = await openStore({ dataDir: trial, upstream: { kind: 'emulator' } });
    await store.close();
    const bound = await checkConfig({ ...good(), DATA_DIR: trial });
    expect(bound.ok).toBe(false);
    expect(bound.lines[0]).toMatch(/FAILED, the bridge would not start: .*emulator.*--rebind-store/s);
    // The same DATA_DIR without credentials (the emulator it is bound to) is fine, and its summary is shown.
    const dev = await checkConfig({ DATA_DIR: trial });
    expect(dev.ok).toBe(true);
    expect(dev.lines.join('\n')).toMatch(/store: embedded store in DATA_DIR .*: 0 users/);
    // A damaged database file.
    const damaged = mkdtempSync(join(tmpdir(), 'check-config-'));
    writeFileSync(join(damaged, 'bridge.sqlite'), 'this is not a database '.repeat(500));
    const broken = await checkConfig({ DATA_DIR: damaged });
    expect(broken.ok).toBe(false);
    expect(broken.lines[0]).toMatch(/DATA_DIR: .*bridge\.sqlite/);
    // PostgreSQL that is not there, and a database that does not exist.
    const down = await checkConfig({ ...good(), DATABASE_URL: 'postgres://u:secret-pw@127.0.0.1:1/scim' });
    expect(down.ok).toBe(false);
    expect(down.lines[0]).toMatch(/DATABASE_URL: cannot connect to PostgreSQL at 127\.0\.0\.1:1/);
    expect(down.lines.join('\n')).not.toContain('secret-pw');
  });

  it('main.ts --check-config exits 0 / 1; the first line is the verdict, the rest indented details', async () => {
    const ok = await runMain(['--check-config'], good());
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^volc-scim-bridge --check-config: OK, /);
    expect(
      ok.stdout
        .trimEnd()
        .split('\n')
        .slice(1)
        .every((l) => l.startsWith('  ')),
    ).toBe(true);
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

  it('main.ts refuses PORT= (empty) with exit code 2', async () => {
    const out = await runMain([], { PORT: '' });
    expect(out.code).toBe(2);
    expect(out.stderr).toContain('PORT: is set but empty');
  });
});

describe('the listening log line', () => {
  // Port 80 needs privileges; where the test runs unprivileged (or 80 is taken) it says so and skips.
  it('PORT=80 logs port 80 (a URL drops its default port; the log must not say 0)', async (ctx) => {
    let proc: Awaited<ReturnType<typeof spawnBridge>> | undefined;
    try {
      proc = await spawnBridge(process.execPath, ['--import', 'tsx', 'src/main.ts'], { PORT: '80' });
    } catch (e) {
      console.warn(`[skip] PORT=80 not testable here: ${(e as Error).message.slice(0, 200)}`);
      ctx.skip();
      return;
    }
    try {
      expect(proc.port).toBe(80);
      const line = proc.lines.find((l) => l.msg === 'volc-scim-bridge listening');
      expect(line).toMatchObject({ port: 80, url: 'http://127.0.0.1:80/scim/v2', tls: false });
      expect((await httpRequest(80, 'GET', '/healthz')).status).toBe(200);
    } finally {
      await proc.cleanup();
    }
  });
});

describe('MAX_MEMBERS_PER_REQUEST and TRUST_PROXY', () => {
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
