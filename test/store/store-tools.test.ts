// `npm run store -- backup | restore | verify | copy`: tested on real files and the test PostgreSQL.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreBindingError } from '../../src/store/errors.js';
import { type CloudIdentity, openStore } from '../../src/store/index.js';
import { copyEmbeddedToPostgres } from '../../src/store/tools.js';
import type { BridgeStore, UserRecord } from '../../src/store/types.js';
import { runStoreCommand } from '../../src/store-cli.js';
import { freshPostgresUrl } from '../helpers/postgres.js';
import { newGroup, newUser } from './contract.js';

const EMULATOR: CloudIdentity = { kind: 'emulator' };
const dirs: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Users (with a tombstone), groups and memberships, written through the store API. */
async function populate(store: BridgeStore, n = 40): Promise<{ users: string[]; groups: string[] }> {
  const users: string[] = [];
  const groups: string[] = [];
  for (let i = 0; i < 3; i++) groups.push((await store.insertGroup(newGroup())).scimId);
  for (let i = 0; i < n; i++) {
    const u = await store.insertUser(
      newUser({
        externalId: `ext-${i}`,
        attributes: { title: `T${i}`, emails: [{ value: `u${i}@example.com` }] },
      }),
    );
    users.push(u.scimId);
    await store.addMembership(groups[i % 3], u.scimId);
    if (i % 7 === 0)
      await store.updateUser(u.scimId, {
        active: false,
        upstreamUserId: null,
        tombstoneGroupIds: [groups[i % 3]],
      });
  }
  await store.deleteUser(users.pop()!);
  return { users, groups };
}

/** Everything a store holds for these ids, for comparing two stores. */
async function image(store: BridgeStore, ids: { users: string[]; groups: string[] }) {
  const users: UserRecord[] = await store.listUsers({}, 0, 10_000);
  const groups = await Promise.all(ids.groups.map((g) => store.getGroup(g)));
  const memberships = Object.fromEntries(
    await Promise.all(ids.users.map(async (u) => [u, await store.groupsOfUser(u)])),
  );
  return { users, groups, memberships };
}

describe('backup, verify and restore of the embedded store', () => {
  let dataDir: string;
  let store: BridgeStore;
  beforeEach(async () => {
    dataDir = tempDir('store-tools-');
    store = await openStore({ dataDir, upstream: EMULATOR });
  });
  afterEach(async () => {
    await store.close().catch(() => {});
  });

  it('backs up while the store is open and being written, and the backup restores to the same records', async () => {
    const ids = await populate(store);
    const file = join(tempDir('backup-'), 'nightly.sqlite');
    // Writes racing the backup: the backup is a consistent snapshot either way.
    const racing = Promise.all(Array.from({ length: 20 }, () => store.insertUser(newUser())));
    const line = await runStoreCommand(['backup', file], { DATA_DIR: dataDir });
    await racing;
    expect(line).toMatch(/verified/);
    expect(await runStoreCommand(['verify', file], {})).toMatch(/is a whole store/);

    const before = await image(store, ids);
    await store.close();
    // Restore over the live DATA_DIR (which now also holds the 20 racing users): the replaced store is kept aside.
    const restored = await runStoreCommand(['restore', file], { DATA_DIR: dataDir });
    expect(restored).toMatch(/kept in .*replaced-/);
    expect(readdirSync(dataDir).some((f) => f.startsWith('replaced-'))).toBe(true);
    store = await openStore({ dataDir, upstream: EMULATOR });
    const after = await image(store, ids);
    expect(after.groups).toEqual(before.groups);
    expect(after.memberships).toEqual(before.memberships);
    // The backup holds every user written before it started, each exactly as it was.
    const byId = new Map(after.users.map((u) => [u.scimId, u]));
    for (const u of before.users.filter((x) => ids.users.includes(x.scimId)))
      expect(byId.get(u.scimId)).toEqual(u);
  });

  it('restores into a new DATA_DIR, which then starts as that store (same id, bound to the same upstream)', async () => {
    const ids = await populate(store, 10);
    const file = join(tempDir('backup-'), 'b.sqlite');
    await runStoreCommand(['backup', file], { DATA_DIR: dataDir });
    const before = await image(store, ids);
    const fresh = join(tempDir('restore-'), 'data');
    await runStoreCommand(['restore', file], { DATA_DIR: fresh });
    const other = await openStore({ dataDir: fresh, upstream: EMULATOR });
    try {
      expect(await image(other, ids)).toEqual(before);
    } finally {
      await other.close();
    }
    await expect(
      openStore({
        dataDir: fresh,
        upstream: { kind: 'volcengine', endpoint: 'https://x', region: 'r', accessKeyId: 'AK' },
      }),
    ).rejects.toBeInstanceOf(StoreBindingError);
  });

  it('refuses to overwrite a backup, to restore while a bridge holds DATA_DIR, and to restore a file that is not a store', async () => {
    await populate(store, 3);
    const file = join(tempDir('backup-'), 'b.sqlite');
    await runStoreCommand(['backup', file], { DATA_DIR: dataDir });
    await expect(runStoreCommand(['backup', file], { DATA_DIR: dataDir })).rejects.toThrow(/already exists/);
    await expect(runStoreCommand(['restore', file], { DATA_DIR: dataDir })).rejects.toThrow(
      /in use by another bridge/,
    );
    const junk = join(tempDir('junk-'), 'junk.sqlite');
    writeFileSync(junk, 'not a database at all'.repeat(100));
    await expect(runStoreCommand(['restore', junk], { DATA_DIR: tempDir('r-') })).rejects.toThrow(
      /not a volc-scim-bridge store|cannot be opened/,
    );
    await expect(
      runStoreCommand(['backup', join(tempDir('b-'), 'x.sqlite')], { DATA_DIR: tempDir('empty-') }),
    ).rejects.toThrow(/holds no embedded store/);
  });
});

const pgProbe = await freshPostgresUrl();
const pgSkip = 'skip' in pgProbe ? pgProbe.skip : undefined;
if (!('skip' in pgProbe)) await pgProbe.drop();
if (pgSkip) console.warn(`[skip] store copy to PostgreSQL not tested: ${pgSkip}`);

describe.skipIf(pgSkip !== undefined)('copy of the embedded store into PostgreSQL', () => {
  const drops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const drop of drops) await drop();
  });
  const freshUrl = async () => {
    const pg = await freshPostgresUrl();
    if ('skip' in pg) throw new Error(pg.skip);
    drops.push(pg.drop);
    return pg.url;
  };

  it('copies every record with its version and timestamps, binds PostgreSQL to the same upstream, and refuses a second copy', async () => {
    const dataDir = tempDir('copy-');
    const store = await openStore({ dataDir, upstream: EMULATOR });
    const ids = await populate(store);
    const before = await image(store, ids);
    const url = await freshUrl();
    // A bridge still running on DATA_DIR would write after the copy: refused.
    await expect(copyEmbeddedToPostgres(dataDir, url)).rejects.toThrow(/in use by another bridge/);
    // A leader's status describes a running bridge: not copied, and a target that has one is still empty.
    await store.publishLeaderStatus('reconciler', 'embedded#1-aaaa', { lastRunAt: null });
    await store.close();
    const started = await openStore({ databaseUrl: url, upstream: EMULATOR });
    await started.publishLeaderStatus('reconciler', 'postgres#2-bbbb', { lastRunAt: null });
    await started.close();

    const line = await runStoreCommand(['copy', '--to', url], { DATA_DIR: dataDir });
    expect(line).toMatch(/copied .* 39 users, 3 groups, 39 memberships/);
    const pg = await openStore({ databaseUrl: url, upstream: EMULATOR });
    try {
      expect(await image(pg, ids)).toEqual(before);
      expect((await pg.leaderStatus('reconciler'))?.replica).toBe('postgres#2-bbbb');
      // The copy writes on as the same store: versions continue.
      const u = before.users[0];
      expect((await pg.updateUser(u.scimId, { externalId: 'after-copy' }, u.version))?.version).toBe(
        u.version + 1,
      );
    } finally {
      await pg.close();
    }
    await expect(
      openStore({
        databaseUrl: url,
        upstream: { kind: 'volcengine', endpoint: 'https://x', region: 'r', accessKeyId: 'AK' },
      }),
    ).rejects.toBeInstanceOf(StoreBindingError);
    await expect(runStoreCommand(['copy', '--to', url], { DATA_DIR: dataDir })).rejects.toThrow(
      /already holds/,
    );
  });

  it('refuses a PostgreSQL store bound to another CloudIdentity', async () => {
    const dataDir = tempDir('copy-');
    const store = await openStore({ dataDir, upstream: EMULATOR });
    await store.close();
    const url = await freshUrl();
    const other = await openStore({
      databaseUrl: url,
      upstream: { kind: 'volcengine', endpoint: 'https://x', region: 'r', accessKeyId: 'AK' },
    });
    await other.close();
    await expect(copyEmbeddedToPostgres(dataDir, url)).rejects.toThrow(/bound to another CloudIdentity/);
  });
});

describe('the store command line', () => {
  it('answers usage errors with exit code 2 and the usage text, and failures with 1', () => {
    const run = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'src/store-cli.ts', ...args], {
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', DATA_DIR: tempDir('cli-'), ...env },
      });
    const usage = run([]);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/usage: npm run store -- <command>/);
    expect(run(['copy']).status).toBe(2);
    const failed = run(['backup', join(tempDir('cli-out-'), 'b.sqlite')]);
    expect(failed.status).toBe(1);
    expect(failed.stderr).toMatch(/FAILED, DATA_DIR: .* holds no embedded store/);
    expect(existsSync(join(tempDir('x-'), 'b.sqlite'))).toBe(false);
  });
});
