// The embedded store's DATA_DIR at start: one owner, never served empty or damaged, PGlite refused.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreSetupError } from '../../src/store/errors.js';
import { openStore } from '../../src/store/index.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { newGroup, newUser } from './contract.js';

const root = await mkdtemp(join(tmpdir(), 'data-dir-test-'));
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
let n = 0;
const newDir = () => join(root, `d${++n}`);

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  );
  return { logger, lines };
}

async function refusal(promise: Promise<unknown>): Promise<StoreSetupError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreSetupError);
  expect((err as StoreSetupError).setting).toBe('DATA_DIR');
  return err as StoreSetupError;
}

/** A DATA_DIR holding a user, a group and a membership, closed. */
async function populated() {
  const dataDir = newDir();
  const store = await openStore({ dataDir });
  const u = await store.insertUser(newUser());
  const g = await store.insertGroup(newGroup());
  await store.addMembership(g.scimId, u.scimId);
  await store.close();
  return { dataDir, u, g };
}

describe('one bridge per DATA_DIR', () => {
  it('refuses a second store on the same DATA_DIR while the first is open, naming DATA_DIR; frees it on close', async () => {
    const dataDir = newDir();
    const first = await openStore({ dataDir });
    try {
      const err = await refusal(openStore({ dataDir }));
      expect(err.message).toMatch(
        new RegExp(
          `^DATA_DIR ${dataDir} is in use by another bridge process \\(held by pid ${process.pid} on host .+\\); run one bridge per DATA_DIR, or set DATABASE_URL`,
        ),
      );
      // The first one keeps working.
      const u = await first.insertUser(newUser());
      expect(await first.getUser(u.scimId)).toEqual(u);
    } finally {
      await first.close();
    }
    const again = await openStore({ dataDir });
    await again.close();
  });

  it('refuses a DATA_DIR it cannot write, naming the uid', async () => {
    // Run as an unprivileged uid (root writes anywhere): as root, a child as nobody; else chmod.
    const parent = newDir();
    mkdirSync(parent, { mode: 0o755 });
    const dataDir = join(parent, 'data');
    if (process.getuid?.() === 0) {
      const script = `import('./src/store/index.ts').then((m) => m.openStore({ dataDir: ${JSON.stringify(dataDir)} }))
        .then(() => process.exit(0), (e) => { console.error(e.constructor.name + ' ' + e.message); process.exit(3); })`;
      const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
        uid: 65534,
        gid: 65534,
        cwd: process.cwd(),
        env: { PATH: process.env.PATH ?? '' },
      });
      expect(child.status, String(child.stderr)).toBe(3);
      expect(String(child.stderr).trim()).toBe(
        `StoreSetupError DATA_DIR ${dataDir}: the directory must be writable by uid 65534 (the bridge runs as uid 65534); EACCES`,
      );
    } else {
      chmodSync(parent, 0o500);
      const err = await refusal(openStore({ dataDir }));
      expect(err.message).toMatch(/must be writable by uid \d+ \(the bridge runs as uid \d+\)/);
      chmodSync(parent, 0o700);
    }
  });

  it('refuses a DATA_DIR that is a file', async () => {
    const path = newDir();
    writeFileSync(path, 'x');
    const err = await refusal(openStore({ dataDir: path }));
    expect(err.message).toMatch(/not a directory/);
  });
});

describe('a damaged or missing store is never served as empty', () => {
  it('refuses garbage in bridge.sqlite, saying what to do, and changes nothing', async () => {
    const { dataDir } = await populated();
    const garbage = Buffer.alloc(8192, 0x5a);
    writeFileSync(join(dataDir, 'bridge.sqlite'), garbage);
    for (const f of ['bridge.sqlite-wal', 'bridge.sqlite-shm']) await rm(join(dataDir, f), { force: true });
    const err = await refusal(openStore({ dataDir }));
    expect(err.message).toMatch(
      /bridge\.sqlite is damaged \(SQLITE_NOTADB\).*Restore bridge\.sqlite from a backup/,
    );
    expect(readFileSync(join(dataDir, 'bridge.sqlite'))).toEqual(garbage);
    // The lock was released: a fixed directory opens.
    await rm(join(dataDir, 'bridge.sqlite'));
    await refusal(openStore({ dataDir }));
  });

  it('refuses a database with a corrupted page (quick_check)', async () => {
    const dataDir = newDir();
    const store = await openStore({ dataDir });
    for (let i = 0; i < 300; i++) await store.insertUser(newUser({ attributes: { pad: 'x'.repeat(500) } }));
    await store.close();
    const file = join(dataDir, 'bridge.sqlite');
    const bytes = readFileSync(file);
    // Overwrite the middle of an interior page (not the header): the B-tree no longer checks out.
    bytes.fill(0xff, 4096 * 5 + 100, 4096 * 5 + 3000);
    writeFileSync(file, bytes);
    const err = await refusal(openStore({ dataDir }));
    expect(err.message).toMatch(/bridge\.sqlite is damaged/);
  });

  it('refuses when the marker says a store existed but bridge.sqlite is gone, unless --accept-empty-store', async () => {
    const { dataDir } = await populated();
    for (const f of ['bridge.sqlite', 'bridge.sqlite-wal', 'bridge.sqlite-shm']) {
      await rm(join(dataDir, f), { force: true });
    }
    const err = await refusal(openStore({ dataDir }));
    expect(err.message).toMatch(
      /bridge\.sqlite is missing, but .*volc-scim-bridge\.json says a store .* was created here/,
    );
    expect(err.message).toMatch(/--accept-empty-store/);
    expect(existsSync(join(dataDir, 'bridge.sqlite'))).toBe(false);

    const { logger, lines } = capture();
    const store = await openStore({ dataDir, acceptEmptyStore: true, logger });
    expect(await store.countUsers({})).toBe(0);
    await store.close();
    expect(lines.some((l) => l.level === 40 && String(l.msg).includes('--accept-empty-store'))).toBe(true);
    // From now on it is this store that the marker names.
    await (await openStore({ dataDir })).close();
  });

  it('refuses a bridge.sqlite replaced by another store (ids differ)', async () => {
    const a = await populated();
    const b = await populated();
    await copyFile(join(b.dataDir, 'bridge.sqlite'), join(a.dataDir, 'bridge.sqlite'));
    const err = await refusal(openStore({ dataDir: a.dataDir }));
    expect(err.message).toMatch(
      /is store [0-9a-f-]+, but .* says this DATA_DIR holds store [0-9a-f-]+: the database file was replaced/,
    );
  });

  it('refuses tables that hold fewer rows than recorded (emptied outside the bridge), unless --accept-empty-store', async () => {
    const { dataDir, u } = await populated();
    const db = new Database(join(dataDir, 'bridge.sqlite'));
    // What a careless fix by hand looks like: the bookkeeping triggers do not see a recreated table.
    db.exec(
      `CREATE TABLE users_new AS SELECT * FROM users WHERE 0; DROP TABLE users; ALTER TABLE users_new RENAME TO users;`,
    );
    db.close();
    const err = await refusal(openStore({ dataDir }));
    expect(err.message).toMatch(/holds fewer records than it recorded \(users: 0 rows, 1 recorded\)/);
    const store = await openStore({ dataDir, acceptEmptyStore: true });
    expect(await store.getUser(u.scimId)).toBeNull();
    await store.close();
  });

  it('serves with a 2 MB page cache after the checks ran through a 1 MB one', async () => {
    const { dataDir } = await populated();
    const store = (await openStore({ dataDir })) as SqliteStore;
    try {
      expect(store.db.pragma('cache_size', { simple: true })).toBe(-2000);
    } finally {
      await store.close();
    }
  });

  it('deletes through the store never trip the check', async () => {
    const { dataDir, u, g } = await populated();
    let store = await openStore({ dataDir });
    const v = await store.insertUser(newUser());
    await store.addMembership(g.scimId, v.scimId);
    await store.addMembership(g.scimId, v.scimId);
    await store.removeMembership(g.scimId, u.scimId);
    await store.deleteUser(u.scimId);
    await store.deleteGroup(g.scimId);
    await store.close();
    store = await openStore({ dataDir });
    await store.deleteUser(v.scimId);
    await store.close();
    store = await openStore({ dataDir });
    expect(await store.countUsers({})).toBe(0);
    await store.close();
  });

  it('refuses a PGlite directory with a clear message and writes nothing into it', async () => {
    const dataDir = newDir();
    mkdirSync(join(dataDir, 'base'), { recursive: true });
    writeFileSync(join(dataDir, 'PG_VERSION'), '17\n');
    const err = await refusal(openStore({ dataDir }));
    expect(err.message).toMatch(
      /holds a PGlite .* that never shipped; this version cannot read it\. Point DATA_DIR at a new directory/,
    );
    expect(existsSync(join(dataDir, 'bridge.sqlite'))).toBe(false);
    expect(existsSync(join(dataDir, 'bridge.lock'))).toBe(false);
  });
});
