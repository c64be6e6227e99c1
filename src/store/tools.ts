// Operator tools for the embedded store (`npm run store -- …`, src/store-cli.ts):
//   backup   SQLite's online backup of DATA_DIR/bridge.sqlite while the bridge runs (a consistent
//            snapshot; the bridge keeps writing meanwhile), verified before it is renamed into place
//   restore  puts a backup in place as DATA_DIR's store (bridge stopped: takes DATA_DIR's lock)
//   copy     embedded store → PostgreSQL, for the day a second replica is needed (bridge stopped)
// Each refuses rather than overwrite: an existing backup file, a non-empty PostgreSQL store, a
// PostgreSQL store bound to another CloudIdentity.
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { UPSTREAM_KEY } from './binding.js';
import { DB_FILE, lockDataDir, STORE_ID_KEY, writeMarker } from './data-dir.js';
import { StoreSetupError } from './errors.js';
import { migrate } from './migrations.js';
import { describeTarget, openPostgresDriver } from './postgres-driver.js';
import { SQLITE_SCHEMA_VERSION } from './sqlite-migrations.js';

export interface StoreCounts {
  users: number;
  groups: number;
  memberships: number;
}

/**
 * Bookkeeping tables that belong to one store file and are not copied between stores; audit_actors
 * is kept by the target's own triggers as the audit rows are copied in.
 */
const NOT_COPIED = new Set(['store_meta', 'row_counts', 'audit_actors']);
const INSERT_BATCH = 500;

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function embeddedDb(dataDir: string): string {
  const path = join(resolve(dataDir), DB_FILE);
  if (!existsSync(path))
    throw new StoreSetupError('DATA_DIR', `${path} does not exist: DATA_DIR holds no embedded store`);
  return path;
}

function counts(db: Database.Database): StoreCounts {
  const n = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  return { users: n('users'), groups: n('groups'), memberships: n('memberships') };
}

/** Checks that `path` is a whole, readable bridge store this build can open; returns its counts. */
export function verifyStoreFile(path: string): StoreCounts & { storeId: string } {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw new Error(`${path} cannot be opened as a SQLite database (${(e as Error).message})`, { cause: e });
  }
  try {
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new Error(`${path} failed SQLite's integrity check: ${String(check)}`);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SQLITE_SCHEMA_VERSION)
      throw new Error(
        `${path} has schema version ${version}, newer than this build's ${SQLITE_SCHEMA_VERSION}`,
      );
    const id = db.prepare('SELECT value FROM store_meta WHERE key = ?').get(STORE_ID_KEY) as
      | { value: string }
      | undefined;
    if (!id) throw new Error(`${path} is not a volc-scim-bridge store (no store id)`);
    return { ...counts(db), storeId: id.value };
  } catch (e) {
    if ((e as { code?: string }).code === 'SQLITE_NOTADB' || (e as { code?: string }).code === 'SQLITE_ERROR')
      throw new Error(`${path} is not a volc-scim-bridge store (${(e as Error).message})`, { cause: e });
    throw e;
  } finally {
    db.close();
  }
}

/** Online backup of DATA_DIR's store into `file` (must not exist); safe while the bridge runs. */
export async function backupEmbeddedStore(
  dataDir: string,
  file: string,
): Promise<StoreCounts & { bytes: number }> {
  const source = embeddedDb(dataDir);
  const target = resolve(file);
  if (existsSync(target)) throw new Error(`${target} already exists; choose a new file name`);
  mkdirSync(dirname(target), { recursive: true });
  const tmp = join(dirname(target), `.${basename(target)}.partial`);
  rmSync(tmp, { force: true });
  const db = new Database(source, { readonly: true, fileMustExist: true, timeout: 5_000 });
  try {
    await db.backup(tmp);
  } finally {
    db.close();
  }
  try {
    const verified = verifyStoreFile(tmp);
    fsyncPath(tmp);
    renameSync(tmp, target);
    fsyncPath(dirname(target));
    const { size } = statSync(target);
    return { users: verified.users, groups: verified.groups, memberships: verified.memberships, bytes: size };
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Installs backup `file` as DATA_DIR's store. The bridge must be stopped (DATA_DIR's lock is
 * taken). The store it replaces is moved aside into DATA_DIR/replaced-<time>/, never deleted.
 */
export function restoreEmbeddedStore(dataDir: string, file: string): StoreCounts & { replacedInto?: string } {
  const dir = resolve(dataDir);
  const backup = resolve(file);
  const verified = verifyStoreFile(backup);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = lockDataDir(dir);
  try {
    let replacedInto: string | undefined;
    const current = [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`].filter((f) => existsSync(join(dir, f)));
    if (current.length > 0) {
      replacedInto = join(dir, `replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`);
      mkdirSync(replacedInto, { mode: 0o700 });
      for (const f of current) renameSync(join(dir, f), join(replacedInto, f));
    }
    const tmp = join(dir, `${DB_FILE}.restoring`);
    copyFileSync(backup, tmp);
    fsyncPath(tmp);
    renameSync(tmp, join(dir, DB_FILE));
    // The marker names the restored store, so the next start accepts it as this DATA_DIR's.
    writeMarker(dir, verified.storeId);
    fsyncPath(dir);
    return {
      users: verified.users,
      groups: verified.groups,
      memberships: verified.memberships,
      replacedInto,
    };
  } finally {
    lock.close();
  }
}

/**
 * Copies every record of DATA_DIR's store into the PostgreSQL store at `databaseUrl` (migrated
 * first), in one transaction, with versions and timestamps kept, and binds it to the same
 * CloudIdentity. Refuses a PostgreSQL store that already holds records or mirrors another
 * CloudIdentity, and a DATA_DIR a bridge is using (writes after the copy would be lost).
 */
export async function copyEmbeddedToPostgres(dataDir: string, databaseUrl: string): Promise<StoreCounts> {
  const dir = resolve(dataDir);
  embeddedDb(dir);
  const lock = lockDataDir(dir);
  const source = new Database(join(dir, DB_FILE), { readonly: true, fileMustExist: true });
  const driver = openPostgresDriver({ connectionString: databaseUrl });
  const { where, database } = describeTarget(databaseUrl);
  try {
    await migrate(driver);
    const pgColumns = new Map<string, Set<string>>();
    for (const row of await driver.query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()`,
    )) {
      const set = pgColumns.get(row.table_name) ?? new Set<string>();
      set.add(row.column_name);
      pgColumns.set(row.table_name, set);
    }
    const tables = (
      source
        .prepare(
          `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`,
        )
        .all() as Array<{ name: string }>
    )
      .map((t) => t.name)
      .filter((t) => !NOT_COPIED.has(t) && pgColumns.has(t));
    const binding = source.prepare('SELECT value FROM store_meta WHERE key = ?').get(UPSTREAM_KEY) as
      | { value: string }
      | undefined;

    await driver.transaction(async (tx) => {
      for (const table of tables) {
        const [{ n }] = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
        if (n > 0)
          throw new Error(
            `the PostgreSQL store at ${where}/${database} already holds ${n} ${table} rows; copy only into an empty store (a new database or schema)`,
          );
      }
      if (binding) {
        const [held] = await tx.query<{ value: string }>('SELECT value FROM store_meta WHERE key = $1', [
          UPSTREAM_KEY,
        ]);
        if (held && held.value !== binding.value)
          throw new Error(
            `the PostgreSQL store at ${where}/${database} is bound to another CloudIdentity (${held.value}); the embedded store mirrors ${binding.value}`,
          );
        await tx.query(
          'INSERT INTO store_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
          [UPSTREAM_KEY, binding.value],
        );
      }
      for (const table of tables) {
        const sqliteColumns = (
          source.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>
        ).map((c) => c.name);
        const columns = sqliteColumns.filter((c) => pgColumns.get(table)!.has(c));
        const select = source.prepare(`SELECT ${columns.join(', ')} FROM ${table} ORDER BY rowid`).raw(true);
        let batch: unknown[][] = [];
        const flush = async () => {
          if (batch.length === 0) return;
          const params: unknown[] = [];
          const rows = batch.map(
            (row) =>
              `(${row
                .map((v) => {
                  params.push(v);
                  return `$${params.length}`;
                })
                .join(', ')})`,
          );
          // OVERRIDING SYSTEM VALUE: ids of identity columns (audit) are copied as they are.
          await tx.query(
            `INSERT INTO ${table} (${columns.join(', ')}) OVERRIDING SYSTEM VALUE VALUES ${rows.join(', ')}`,
            params,
          );
          batch = [];
        };
        for (const row of select.iterate() as IterableIterator<unknown[]>) {
          batch.push(row);
          if (batch.length >= INSERT_BATCH) await flush();
        }
        await flush();
        // An identity column's sequence continues after the copied ids.
        if (columns.includes('id')) {
          const [{ seq }] = await tx.query<{ seq: string | null }>(
            "SELECT pg_get_serial_sequence($1, 'id') AS seq",
            [table],
          );
          if (seq)
            await tx.query(`SELECT setval($1::regclass, max(id)) FROM ${table} HAVING count(*) > 0`, [seq]);
        }
      }
    });
    const copied = await driver.query<StoreCounts>(
      `SELECT (SELECT count(*)::int FROM users) AS users, (SELECT count(*)::int FROM groups) AS groups,
              (SELECT count(*)::int FROM memberships) AS memberships`,
    );
    const expected = counts(source);
    const got = copied[0];
    if (
      got.users !== expected.users ||
      got.groups !== expected.groups ||
      got.memberships !== expected.memberships
    )
      throw new Error(
        `copy verification failed: expected ${JSON.stringify(expected)}, PostgreSQL holds ${JSON.stringify(got)}`,
      );
    return got;
  } finally {
    source.close();
    lock.close();
    await driver.close();
  }
}
