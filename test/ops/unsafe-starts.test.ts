// Starts that would serve the wrong data: a wiped store facing a CloudIdentity that still holds the
// bridge's users, two replicas each with its own in-process emulator, production without credentials.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RunningBridge, startBridge } from '../../src/bridge.js';
import { checkConfig } from '../../src/check-config.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import {
  DEV_ACCESS_KEY,
  DEV_SECRET_KEY,
  type RunningEmulator,
  startEmulator,
} from '../../src/emulator/index.js';
import { StoreBindingError, StoreSetupError } from '../../src/store/errors.js';
import { freshPostgresUrl } from '../helpers/postgres.js';
import { TEST_TOKEN, testConfig } from './helpers.js';
import { httpRequest, runMain } from './process.js';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'unsafe-start-'));
  dirs.push(d);
  return d;
};
const bridges: RunningBridge[] = [];
afterEach(async () => {
  for (const b of bridges.splice(0)) await b.close().catch(() => {});
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(env: Record<string, string>, options: Parameters<typeof startBridge>[2] = {}) {
  const bridge = await startBridge(
    testConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      SHUTDOWN_GRACE_MS: '1000',
      RECONCILE_INTERVAL_MS: '0',
      ...env,
    }),
    silent,
    options,
  );
  bridges.push(bridge);
  return bridge;
}
async function stop(bridge: RunningBridge) {
  bridges.splice(bridges.indexOf(bridge), 1);
  await bridge.close();
}
async function refusal<T extends Error>(
  promise: Promise<unknown>,
  type: new (...a: never[]) => T,
): Promise<T> {
  const err = await promise.then(
    (b) => {
      bridges.push(b as RunningBridge);
      return null;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(type);
  return err as T;
}

const userBody = (userName: string) => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  userName,
  name: { givenName: 'A', familyName: 'B' },
  emails: [{ value: `${userName}@example.com`, primary: true }],
});

const pg = await freshPostgresUrl('unsafe');
const pgSkip = 'skip' in pg ? pg.skip : undefined;
if (pgSkip) console.warn(`[skip] PostgreSQL cases of unsafe starts not tested: ${pgSkip}`);
afterAll(async () => {
  if (!('skip' in pg)) await pg.drop();
});

describe('an empty store facing a CloudIdentity that already holds users', () => {
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator({ port: 0 });
  });
  afterAll(async () => {
    await emulator.close();
  });
  const upstream = () => ({
    VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
    VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
    VOLCENGINE_ENDPOINT: emulator.url,
  });

  it('a wiped DATA_DIR is refused until --accept-empty-store, which then costs the ids the IdP holds', async () => {
    emulator.reset();
    let dataDir = tempDir();
    const first = await start({ ...upstream(), DATA_DIR: dataDir });
    const created = await httpRequest(first.port, 'POST', '/scim/v2/Users', {
      token: TEST_TOKEN,
      body: userBody('wiped-1'),
    });
    expect(created.status, created.body).toBe(201);
    const id = JSON.parse(created.body).id as string;
    await stop(first);
    // The store is lost (a new, empty DATA_DIR); CloudIdentity still holds the user.
    rmSync(dataDir, { recursive: true, force: true });
    dataDir = tempDir();
    const err = await refusal(start({ ...upstream(), DATA_DIR: dataDir }), StoreSetupError);
    expect(err.message).toMatch(/new and empty, but CloudIdentity at .* already holds 1 user and 0 groups/);
    expect(err.message).toMatch(/restore it from a backup.*--accept-empty-store/s);
    // Refused again on the next attempt: the refusal does not wear off; --check-config says so too.
    await refusal(start({ ...upstream(), DATA_DIR: dataDir }), StoreSetupError);
    const checked = await checkConfig({ ...upstream(), DATA_DIR: dataDir, SCIM_BEARER_TOKENS: TEST_TOKEN });
    expect(checked.ok).toBe(false);
    expect(checked.lines[0]).toMatch(
      /would not start: the store is new and empty, .* already holds 1 users.*--accept-empty-store/,
    );

    const accepted = await start({ ...upstream(), DATA_DIR: dataDir }, { acceptEmptyStore: true });
    expect(
      (await httpRequest(accepted.port, 'GET', `/scim/v2/Users/${id}`, { token: TEST_TOKEN })).status,
    ).toBe(404);
    await stop(accepted);
    // Accepted once: later starts need no flag.
    await stop(await start({ ...upstream(), DATA_DIR: dataDir }));
    expect((await checkConfig({ ...upstream(), DATA_DIR: dataDir, SCIM_BEARER_TOKENS: TEST_TOKEN })).ok).toBe(
      true,
    );
  });

  it('a new store facing an empty CloudIdentity starts without the flag', async () => {
    emulator.reset();
    await stop(await start({ ...upstream(), DATA_DIR: tempDir() }));
  });

  it.skipIf(pgSkip !== undefined)(
    'a new PostgreSQL store facing a populated CloudIdentity is refused too',
    async () => {
      emulator.reset();
      emulator.seedUsers(3);
      const fresh = await freshPostgresUrl('unsafe');
      if ('skip' in fresh) throw new Error(fresh.skip);
      try {
        const err = await refusal(
          start({ ...upstream(), DATA_DIR: tempDir(), DATABASE_URL: fresh.url }),
          StoreSetupError,
        );
        expect(err.message).toMatch(/^DATABASE_URL: .* already holds 3 users/);
      } finally {
        await fresh.drop();
      }
    },
  );
});

describe.skipIf(pgSkip !== undefined)(
  'two bridges on one DATABASE_URL without Volcengine credentials',
  () => {
    it('the second, with an in-process emulator of its own, is refused; the standalone emulator serves both', async () => {
      if ('skip' in pg) return;
      const url = pg.url;
      const a = await start({ DATABASE_URL: url, DATA_DIR: tempDir() });
      const err = await refusal(start({ DATABASE_URL: url, DATA_DIR: tempDir() }), StoreBindingError);
      expect(err.message).toMatch(/another in-process emulator .*npm run emulator/s);
      // The same bridge restarted on its own DATA_DIR (the same emulator state) starts again.
      const dataDir = tempDir();
      await stop(a);
      const fresh = await freshPostgresUrl('unsafe');
      if ('skip' in fresh) throw new Error(fresh.skip);
      try {
        await stop(await start({ DATABASE_URL: fresh.url, DATA_DIR: dataDir }));
        await stop(await start({ DATABASE_URL: fresh.url, DATA_DIR: dataDir }));
      } finally {
        await fresh.drop();
      }

      // The README's two-replica trial: one standalone emulator, both replicas pointed at it.
      const standalone = await startEmulator({ port: 0 });
      const shared = await freshPostgresUrl('unsafe');
      if ('skip' in shared) throw new Error(shared.skip);
      try {
        const env = {
          DATABASE_URL: shared.url,
          VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
          VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
          VOLCENGINE_ENDPOINT: standalone.url,
        };
        const one = await start({ ...env, DATA_DIR: tempDir() });
        const two = await start({ ...env, DATA_DIR: tempDir() });
        const created = await httpRequest(one.port, 'POST', '/scim/v2/Users', {
          token: TEST_TOKEN,
          body: userBody('two-replicas'),
        });
        expect(created.status, created.body).toBe(201);
        const id = JSON.parse(created.body).id as string;
        expect(
          (await httpRequest(two.port, 'GET', `/scim/v2/Users/${id}`, { token: TEST_TOKEN })).status,
        ).toBe(200);
      } finally {
        for (const b of bridges.splice(0)) await b.close().catch(() => {});
        await standalone.close();
        await shared.drop();
      }
    });
  },
);

describe('NODE_ENV=production without Volcengine credentials', () => {
  it('is refused by the configuration, naming the variables', () => {
    let err: unknown;
    try {
      loadConfig({ NODE_ENV: 'production', SCIM_BEARER_TOKENS: TEST_TOKEN }, () => 'generated');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.join('\n')).toMatch(
      /VOLCENGINE_ACCESS_KEY: NODE_ENV=production needs .*VOLCENGINE_ACCESS_KEY and VOLCENGINE_SECRET_KEY/,
    );
  });

  it('main.ts exits 2 before starting anything; production prints nothing but one JSON log line, and no token', async () => {
    const dataDir = tempDir();
    const out = await runMain(
      [],
      { NODE_ENV: 'production', DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1' },
      15_000,
    );
    expect(out.code).toBe(2);
    expect(out.stderr).toBe('');
    const lines = out.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]) as { level: number; msg: string; problems: string[] };
    expect(line).toMatchObject({ level: 60, msg: 'invalid configuration', service: 'volc-scim-bridge' });
    expect(line.problems.join('\n')).toMatch(/VOLCENGINE_ACCESS_KEY and VOLCENGINE_SECRET_KEY/);
    expect(out.stdout).not.toMatch(/Generated token|Bearer/);
  });

  it('a start that fails in production is one JSON log line too (exit 1)', async () => {
    const out = await runMain(
      [],
      {
        NODE_ENV: 'production',
        DATA_DIR: tempDir(),
        PORT: '0',
        HOST: '127.0.0.1',
        SCIM_BEARER_TOKENS: TEST_TOKEN,
        VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
        VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
        DATABASE_URL: 'postgres://bridge:secret-pw@127.0.0.1:1/scim',
      },
      30_000,
    );
    expect(out.code).toBe(1);
    expect(out.stderr).toBe('');
    const failed = out.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string; reason?: string })
      .find((l) => l.msg === 'failed to start');
    expect(failed?.level).toBe(60);
    expect(failed?.reason).toMatch(/^DATABASE_URL: /);
    expect(out.stdout).not.toContain('secret-pw');
  });
});
