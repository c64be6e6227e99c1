// Start-up errors name the setting and what to do; inspectStore (for --check-config) finds what a
// start would refuse without changing anything; a PostgreSQL outage under a running store is
// StoreUnavailableError (503), not a raw driver error (500).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreSetupError, StoreUnavailableError } from '../../src/store/errors.js';
import { inspectStore, openStore } from '../../src/store/index.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { openPostgresDriver, startupError, unavailableReason } from '../../src/store/postgres-driver.js';
import { freshPostgresUrl, TEST_DATABASE_URL } from '../helpers/postgres.js';
import { newUser } from './contract.js';

const root = await mkdtemp(join(tmpdir(), 'setup-errors-test-'));
const pg = await freshPostgresUrl('setup_errors');
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  if ('url' in pg) await pg.drop();
});

async function failure(promise: Promise<unknown>): Promise<Error> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

describe('PostgreSQL start-up errors name DATABASE_URL and what to do, never the password', () => {
  it('connection refused', async () => {
    const err = await failure(openStore({ databaseUrl: 'postgres://scim:s3cretpw@127.0.0.1:1/scim' }));
    expect(err).toBeInstanceOf(StoreSetupError);
    expect(err.message).toBe(
      'DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:1 (ECONNREFUSED); is the server running and reachable?',
    );
  });

  it('unknown host', async () => {
    const err = await failure(
      openStore({ databaseUrl: 'postgres://scim:s3cretpw@no-such-host.invalid:5432/scim' }),
    );
    expect(err.message).toMatch(
      /^DATABASE_URL: cannot connect to PostgreSQL at no-such-host\.invalid:5432 \((ENOTFOUND|EAI_AGAIN)\); is the server running/,
    );
    expect(err.message).not.toContain('s3cretpw');
  });

  it.skipIf('skip' in pg)('a database that does not exist', async () => {
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = '/scim_missing_db';
    url.password = 's3cretpw';
    const err = await failure(openStore({ databaseUrl: url.toString() }));
    expect(err).toBeInstanceOf(StoreSetupError);
    expect(err.message).toMatch(
      /^DATABASE_URL: database "scim_missing_db" does not exist at .+; create it first: createdb scim_missing_db$/,
    );
    expect(err.message).not.toContain('s3cretpw');
  });

  it('a failed login or a missing privilege names DATABASE_URL and what to check', () => {
    const url = 'postgres://scim:s3cretpw@db.internal:6543/scim';
    for (const code of ['28P01', '28000']) {
      const err = startupError(
        Object.assign(new Error('password authentication failed for user "scim"'), { code }),
        url,
      );
      expect(err).toBeInstanceOf(StoreSetupError);
      expect((err as Error).message).toBe(
        `DATABASE_URL: PostgreSQL at db.internal:6543 refused the login (${code}: authentication failed); check the user and password in DATABASE_URL`,
      );
    }
    const other = new Error('syntax error');
    expect(startupError(Object.assign(other, { code: '42601' }), url)).toBe(other);
  });

  it('classifies connection-class failures as unavailable, others not', () => {
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EPIPE',
      'ENOTFOUND',
      'EAI_AGAIN',
      '08006',
      '08001',
      '57P01',
      '57P03',
      '53300',
    ]) {
      expect(unavailableReason(Object.assign(new Error('x'), { code })), code).toBe(code);
    }
    expect(unavailableReason(new Error('timeout exceeded when trying to connect'))).toBe('connect timeout');
    expect(unavailableReason(new Error('Connection terminated unexpectedly'))).toBe('connection terminated');
    for (const code of ['23505', '42P01', '22P02', undefined]) {
      expect(unavailableReason(Object.assign(new Error('x'), { code }))).toBeNull();
    }
  });

  it('a running store whose server goes away answers StoreUnavailableError on reads, writes and ping', async () => {
    const driver = openPostgresDriver({
      connectionString: 'postgres://x:pw@127.0.0.1:1/db',
      connectionTimeoutMillis: 500,
    });
    const { SqlStore } = await import('../../src/store/sql-store.js');
    const store = new SqlStore(driver);
    try {
      for (const call of [() => store.ping(), () => store.getUser('x'), () => store.insertUser(newUser())]) {
        const err = await failure(call());
        expect(err).toBeInstanceOf(StoreUnavailableError);
        expect((err as StoreUnavailableError).reason).toBe('PostgreSQL: ECONNREFUSED');
        expect(err.message).not.toContain('pw');
      }
    } finally {
      await store.close();
    }
  });
});

describe('inspectStore (read-only, for --check-config)', () => {
  it('is OK for a DATA_DIR that does not exist yet, and creates nothing', async () => {
    const dataDir = join(root, 'new', 'data');
    const r = await inspectStore({ dataDir });
    expect(r).toMatchObject({ ok: true, problems: [] });
    expect(existsSync(join(root, 'new'))).toBe(false);
  });

  it('finds a DATA_DIR path that cannot be created', async () => {
    writeFileSync(join(root, 'file'), 'x');
    const r = await inspectStore({ dataDir: join(root, 'file', 'data') });
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(/^DATA_DIR .*file is not a directory/);
  });

  it('reports a healthy store with its counts, then each kind of damage a start would refuse', async () => {
    const dataDir = join(root, 'inspected');
    const store = await openStore({ dataDir, upstream: { kind: 'emulator' } });
    await store.insertUser(newUser());
    // While the bridge runs: a read-only look works.
    expect(await inspectStore({ dataDir, upstream: { kind: 'emulator' } })).toMatchObject({
      ok: true,
      summary: expect.stringMatching(/1 users/),
    });
    await store.close();
    const bound = await inspectStore({
      dataDir,
      upstream: { kind: 'volcengine', endpoint: 'https://e', region: 'r', accessKeyId: 'AK' },
    });
    expect(bound.ok).toBe(false);
    expect(bound.problems[0]).toMatch(
      /mirrors the in-process CloudIdentity emulator, not CloudIdentity at https:\/\/e/,
    );

    const pgDir = join(root, 'pglite');
    mkdirSync(pgDir);
    writeFileSync(join(pgDir, 'PG_VERSION'), '17');
    expect((await inspectStore({ dataDir: pgDir })).problems[0]).toMatch(/PGlite/);

    await rm(join(dataDir, 'bridge.sqlite'));
    await rm(join(dataDir, 'bridge.sqlite-wal'), { force: true });
    await rm(join(dataDir, 'bridge.sqlite-shm'), { force: true });
    const missing = await inspectStore({ dataDir });
    expect(missing.ok).toBe(false);
    expect(missing.problems[0]).toMatch(/bridge\.sqlite is missing.*--accept-empty-store/);
    expect(existsSync(join(dataDir, 'bridge.sqlite'))).toBe(false);

    writeFileSync(join(dataDir, 'bridge.sqlite'), Buffer.alloc(4096, 1));
    const garbage = await inspectStore({ dataDir });
    expect(garbage.ok).toBe(false);
    expect(garbage.problems[0]).toMatch(/bridge\.sqlite cannot be read \(SQLITE_NOTADB\)/);
  });

  it('connects to PostgreSQL and names an unreachable one', async () => {
    const r = await inspectStore({ databaseUrl: 'postgres://u:pw@127.0.0.1:1/scim' });
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      'DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:1 (ECONNREFUSED); is the server running and reachable?',
    ]);
  });

  it.skipIf('skip' in pg)('checks the migration state and the binding on PostgreSQL', async () => {
    if (!('url' in pg)) return;
    expect(await inspectStore({ databaseUrl: pg.url })).toMatchObject({
      ok: true,
      summary: expect.stringMatching(/empty/),
    });
    const store = await openStore({ databaseUrl: pg.url, upstream: { kind: 'emulator' } });
    await store.close();
    expect(await inspectStore({ databaseUrl: pg.url, upstream: { kind: 'emulator' } })).toMatchObject({
      ok: true,
      summary: expect.stringMatching(new RegExp(`${MIGRATIONS.length} migrations applied`)),
    });
    const other = await inspectStore({
      databaseUrl: pg.url,
      upstream: { kind: 'volcengine', endpoint: 'https://e', region: 'r', accessKeyId: 'AK' },
    });
    expect(other.ok).toBe(false);
    expect(other.problems[0]).toMatch(/PostgreSQL database of DATABASE_URL mirrors the in-process/);
  });
});
