// Operator tools for the embedded store (`npm run store -- …`, src/store-cli.ts):
//   backup   VACUUM INTO a temporary file beside the target while the bridge runs (one read
//            transaction: a consistent snapshot that writes never restart), made a single
//            self-contained file, verified, then renamed into place
//   restore  copies a backup to a temporary file in DATA_DIR, verifies it, then swaps it in with a
//            rename; the store it replaces stays in DATA_DIR/replaced-<time>/ (bridge stopped:
//            takes DATA_DIR's lock)
//   copy     embedded store → PostgreSQL, for the day a second replica is needed (bridge stopped);
//            the embedded store is then marked moved, and a start on it is refused
// Each refuses rather than overwrite: an existing backup file, a non-empty PostgreSQL store, a
// PostgreSQL store bound to another CloudIdentity, a backup of another CloudIdentity's store.
// Every file written is 0600, every directory created 0700: they hold names and e-mail addresses.
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { describeUpstream, parseBinding, sameCloudIdentity, UPSTREAM_KEY } from './binding.js';
import { DB_FILE, lockDataDir, MOVED_KEY, STORE_ID_KEY, writeMarker } from './data-dir.js';
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
 * is kept by the target's own triggers as the audit rows are copied in; the drift snapshot (drift_*)
 * describes the CloudIdentity the source was bound to and is rebuilt by the target's drift passes.
 */
const NOT_COPIED = new Set([
  'store_meta',
  'row_counts',
  'audit_actors',
  'drift_sweep',
  'drift_unmanaged',
  'drift_unmanaged_groups',
  'drift_reported',
]);
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
export function verifyStoreFile(path: string): StoreCounts & { storeId: string; upstream: string | null } {
  // A file in WAL mode (backups made by older versions) gets an empty -wal and a -shm from a
  // read-only connection, left behind on close: removed again, if this call made them.
  const sidecars = [`${path}-wal`, `${path}-shm`].filter((f) => !existsSync(f));
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
    const upstream = db.prepare('SELECT value FROM store_meta WHERE key = ?').get(UPSTREAM_KEY) as
      | { value: string }
      | undefined;
    return { ...counts(db), storeId: id.value, upstream: upstream?.value ?? null };
  } catch (e) {
    if ((e as { code?: string }).code === 'SQLITE_NOTADB' || (e as { code?: string }).code === 'SQLITE_ERROR')
      throw new Error(`${path} is not a volc-scim-bridge store (${(e as Error).message})`, { cause: e });
    throw e;
  } finally {
    db.close();
    if (sidecars.length === 2 && existsSync(sidecars[0]) && statSync(sidecars[0]).size === 0)
      for (const f of sidecars) rmSync(f, { force: true });
  }
}

/** Creates `dir` and missing parents with mode 0700 (an existing directory is left as it is). */
function mkdirPrivate(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Removes `path` and the journal files SQLite may have left beside it. */
function removeWithJournals(path: string): void {
  for (const f of [path, `${path}-journal`, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
}

/** Copies `from` into a new file `to` created 0600, synced; a failed copy (ENOSPC) removes `to`. */
function copyPrivate(from: string, to: string): void {
  const src = openSync(from, 'r');
  let dst: number | undefined;
  try {
    dst = openSync(to, 'wx', 0o600);
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(src, buf, 0, buf.length, null);
      if (n === 0) break;
      let off = 0;
      while (off < n) off += writeSync(dst, buf, off, n - off);
    }
    fsyncSync(dst);
  } catch (e) {
    if (dst !== undefined) {
      closeSync(dst);
      dst = undefined;
      rmSync(to, { force: true });
    }
    throw e;
  } finally {
    if (dst !== undefined) closeSync(dst);
    closeSync(src);
  }
}

/**
 * Online backup of DATA_DIR's store into `file` (must not exist); safe while the bridge runs.
 * VACUUM INTO reads one snapshot in one read transaction, so the bridge's writes neither block it
 * nor restart it (SQLite's backup API starts over after every write by another connection).
 */
export async function backupEmbeddedStore(
  dataDir: string,
  file: string,
): Promise<StoreCounts & { bytes: number }> {
  const source = embeddedDb(dataDir);
  const target = resolve(file);
  if (existsSync(target)) throw new Error(`${target} already exists; choose a new file name`);
  mkdirPrivate(dirname(target));
  const tmp = join(dirname(target), `.${basename(target)}.partial`);
  removeWithJournals(tmp);
  try {
    // Created empty and 0600 first: VACUUM INTO fills an empty file and keeps its mode.
    closeSync(openSync(tmp, 'wx', 0o600));
    const db = new Database(source, { readonly: true, fileMustExist: true, timeout: 5_000 });
    try {
      db.prepare('VACUUM INTO ?').run(tmp);
    } finally {
      db.close();
    }
    // A rollback-journal database is one self-contained file: opening it (verify, restore) leaves
    // no -wal or -shm beside it.
    const out = new Database(tmp, { fileMustExist: true });
    try {
      out.pragma('journal_mode = DELETE');
    } finally {
      out.close();
    }
    const verified = verifyStoreFile(tmp);
    fsyncPath(tmp);
    renameSync(tmp, target);
    fsyncPath(dirname(target));
    const { size } = statSync(target);
    return { users: verified.users, groups: verified.groups, memberships: verified.memberships, bytes: size };
  } catch (e) {
    removeWithJournals(tmp);
    throw e;
  }
}

/**
 * The binding recorded in the stopped store at `path`, or null when it has none or cannot be read.
 * Opened for writing: the last connection to close a WAL database removes its -wal and -shm, where
 * a read-only one would leave them behind.
 */
function bindingOf(path: string): string | null {
  try {
    const db = new Database(path, { fileMustExist: true, timeout: 1_000 });
    try {
      return (
        (
          db.prepare('SELECT value FROM store_meta WHERE key = ?').get(UPSTREAM_KEY) as
            | { value: string }
            | undefined
        )?.value ?? null
      );
    } finally {
      db.close();
    }
  } catch {
    return null;
  }
}

/** Folds a live store's write-ahead log into its file, so the file alone is the store (best effort). */
function checkpoint(path: string): void {
  try {
    const db = new Database(path, { fileMustExist: true, timeout: 1_000 });
    try {
      db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      db.close();
    }
  } catch {
    // A damaged store: its -wal and -shm are kept aside with it below.
  }
}

const sameFile = (a: string, b: string) => {
  const x = statSync(a);
  const y = statSync(b);
  return x.dev === y.dev && x.ino === y.ino;
};

export interface RestoreOptions {
  /** Restore a backup bound to another CloudIdentity than the store it replaces. */
  allowOtherCloudIdentity?: boolean;
}

/**
 * Installs backup `file` as DATA_DIR's store. The bridge must be stopped (DATA_DIR's lock is
 * taken). The backup is copied to a temporary file beside the store and verified before anything
 * is replaced; then the store it replaces is linked into DATA_DIR/replaced-<time>/ and the copy
 * renamed over it, so the store's path always holds a whole store. A copy that fails (a full disk)
 * leaves DATA_DIR as it was.
 */
export function restoreEmbeddedStore(
  dataDir: string,
  file: string,
  options: RestoreOptions = {},
): StoreCounts & { replacedInto?: string } {
  const dir = resolve(dataDir);
  const backup = resolve(file);
  if (!existsSync(backup)) throw new Error(`${backup} does not exist`);
  const livePath = join(dir, DB_FILE);
  if (existsSync(livePath) && sameFile(backup, livePath))
    throw new Error(
      `${file} is DATA_DIR's live store itself (${livePath}); restore from a backup of it (npm run store -- backup FILE makes one)`,
    );
  const verified = verifyStoreFile(backup);
  mkdirPrivate(dir);
  const lock = lockDataDir(dir);
  try {
    // Where the database really is (bridge.sqlite may be a symlink): the swap happens there.
    const present = existsSync(livePath);
    const live = present ? realpathSync(livePath) : livePath;
    if (present && verified.upstream && !options.allowOtherCloudIdentity) {
      const held = bindingOf(live);
      const a = held ? parseBinding(held) : null;
      const b = parseBinding(verified.upstream);
      if (a && b && !sameCloudIdentity(a, b))
        throw new Error(
          `${file} is a store bound to ${describeUpstream(b)}, but the store in DATA_DIR ${dir} mirrors ${describeUpstream(a)}; ` +
            "nothing was replaced. Restoring it would serve one CloudIdentity's ids against the other. If that is truly meant " +
            '(the same directory under new settings), run restore again with --allow-other-cloudidentity, then start the bridge ' +
            'with --rebind-store',
        );
    }
    const tmp = join(dirname(live), `.${basename(live)}.restoring`);
    removeWithJournals(tmp);
    try {
      copyPrivate(backup, tmp);
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new Error(
        `copying ${file} into DATA_DIR ${dir} failed (${code ?? (e as Error).message})${code === 'ENOSPC' ? `: the restored store needs ${statSync(backup).size} bytes free there` : ''}; the store in DATA_DIR is unchanged`,
        { cause: e },
      );
    }
    let replacedInto: string | undefined;
    try {
      const copied = verifyStoreFile(tmp);
      if (copied.storeId !== verified.storeId)
        throw new Error(`the copy of ${file} in DATA_DIR differs from it`);
      if (present) {
        checkpoint(live);
        replacedInto = join(dirname(live), `replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`);
        mkdirSync(replacedInto, { mode: 0o700 });
        try {
          linkSync(live, join(replacedInto, DB_FILE));
        } catch {
          // A file system without hard links: moved aside instead (the copy is already verified).
          renameSync(live, join(replacedInto, DB_FILE));
        }
        // A log left beside the old file would be replayed into the restored one.
        for (const suffix of ['-wal', '-shm']) {
          if (existsSync(`${live}${suffix}`))
            renameSync(`${live}${suffix}`, join(replacedInto, `${DB_FILE}${suffix}`));
        }
      }
    } catch (e) {
      removeWithJournals(tmp);
      throw e;
    }
    renameSync(tmp, live);
    fsyncPath(dirname(live));
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
 * CloudIdentity, then marks the embedded store moved. Refuses a PostgreSQL store that already holds
 * records or mirrors another CloudIdentity, and a DATA_DIR a bridge is using (writes after the copy
 * would be lost).
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
    // PostgreSQL is the live store from now on: a start on this one is refused (data-dir.ts).
    const mark = new Database(join(dir, DB_FILE), { fileMustExist: true, timeout: 5_000 });
    try {
      mark
        .prepare(
          'INSERT INTO store_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        )
        .run(MOVED_KEY, JSON.stringify({ to: `${where}/${database}`, at: new Date().toISOString() }));
    } finally {
      mark.close();
    }
    return got;
  } finally {
    source.close();
    lock.close();
    await driver.close();
  }
}
