// The embedded store's DATA_DIR:
//   bridge.sqlite (+ -wal, -shm)  the database (sqlite-store.ts), mode 0600, normal WAL locking so
//                                 another process (an online backup) can read it while the bridge runs
//   bridge.lock                   a SQLite file held with an EXCLUSIVE lock for the bridge's lifetime:
//                                 one bridge per DATA_DIR (see lockDataDir)
//   volc-scim-bridge.json         marker {format, storeId}, written after the database is created: a
//                                 marker without its database, or with another database's id, means the
//                                 store was lost or replaced, which is refused rather than served empty
// Start: directory → PGlite check → lock → marker → open + quick_check → migrate → store id →
// row counts → import of a journal-version DATA_DIR (legacy-journal-import.ts) → owner note.

import { randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { StoreSetupError } from './errors.js';
import { hasLegacyJournal, importLegacyJournal } from './legacy-journal-import.js';
import { prepareDatabase, SqliteStore } from './sqlite-store.js';

export const DB_FILE = 'bridge.sqlite';
export const LOCK_FILE = 'bridge.lock';
export const MARKER_FILE = 'volc-scim-bridge.json';
const MARKER_FORMAT = 'volc-scim-bridge/data-dir';
export const STORE_ID_KEY = 'store_id';
/** Set by `store copy`: {to: 'host:port/database', at}; the embedded store is no longer the live one. */
export const MOVED_KEY = 'moved_to';
const OWNER_KEY = 'owner';
const COUNTED = ['users', 'groups', 'memberships'] as const;

export interface EmbeddedStoreOptions {
  dataDir: string;
  logger?: Logger;
  /** --accept-empty-store: start even though the store lost records (logs a warning, resets the checks). */
  acceptEmptyStore?: boolean;
  /** --reuse-moved-store: serve a store that `store copy` moved to PostgreSQL (clears the mark). */
  reuseMovedStore?: boolean;
}

const uid = () => (typeof process.getuid === 'function' ? process.getuid() : 'of the bridge');

function notWritable(dir: string, err: unknown): StoreSetupError {
  const code = (err as { code?: string }).code ?? 'error';
  const id = uid();
  return new StoreSetupError(
    'DATA_DIR',
    `DATA_DIR ${dir}: the directory must be writable by uid ${id} (the bridge runs as uid ${id}); ${code}`,
    { cause: err },
  );
}

function isAccessError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    code === 'EACCES' ||
    code === 'EROFS' ||
    code === 'EPERM' ||
    code === 'SQLITE_READONLY' ||
    code === 'SQLITE_CANTOPEN'
  );
}

/** Creates `path` empty with mode 0600 if missing (SQLite would use 0644; -wal/-shm copy the mode). */
function createPrivate(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Platforms that cannot fsync a directory; on Linux this succeeds.
  }
}

export interface Marker {
  format: string;
  storeId: string;
  createdAt: string;
}

export function readMarker(dir: string): Marker | null {
  const path = join(dir, MARKER_FILE);
  if (!existsSync(path)) return null;
  let marker: Partial<Marker>;
  try {
    marker = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new StoreSetupError(
      'DATA_DIR',
      `${path} is not valid JSON (${(e as Error).message}); restore it from a backup or remove it only if ${DB_FILE} is the right store`,
      { cause: e },
    );
  }
  if (marker?.format !== MARKER_FORMAT || typeof marker.storeId !== 'string') {
    throw new StoreSetupError('DATA_DIR', `${path} is not a volc-scim-bridge DATA_DIR marker`);
  }
  return marker as Marker;
}

export function writeMarker(dir: string, storeId: string): void {
  const path = join(dir, MARKER_FILE);
  const tmp = `${path}.tmp`;
  const marker: Marker = { format: MARKER_FORMAT, storeId, createdAt: new Date().toISOString() };
  writeFileSync(tmp, `${JSON.stringify(marker, null, 2)}\n`, { mode: 0o600 });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  syncDir(dir);
}

/** Who holds the lock, as the holder recorded it in bridge.sqlite (best effort). */
function recordedOwner(dir: string): string {
  try {
    const db = new Database(join(dir, DB_FILE), { readonly: true, fileMustExist: true, timeout: 1000 });
    try {
      const row = db.prepare('SELECT value FROM store_meta WHERE key = ?').get(OWNER_KEY) as
        | { value: string }
        | undefined;
      if (!row) return 'owner unknown';
      const o = JSON.parse(row.value) as { host: string; pid: number; since: string };
      return `held by pid ${o.pid} on host ${o.host} since ${o.since}`;
    } finally {
      db.close();
    }
  } catch {
    return 'owner unknown';
  }
}

/**
 * Takes DATA_DIR/bridge.lock for this process's lifetime. SQLite's own (POSIX fcntl) locking does
 * the work: locking_mode=EXCLUSIVE keeps the exclusive lock of the first write until the connection
 * closes, the kernel drops it when the process dies (no stale lock to clean up), and it holds
 * between containers sharing a volume on one host, whatever their hostnames. A separate file so
 * the database itself keeps normal WAL locking and stays readable by a backup. busy_timeout 0: a
 * second bridge is refused at once.
 */
export function lockDataDir(dir: string): Database.Database {
  const path = join(storeDir(dir), LOCK_FILE);
  let lock: Database.Database | undefined;
  try {
    createPrivate(path);
    lock = new Database(path, { timeout: 0 });
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE');
    lock.exec(
      'CREATE TABLE IF NOT EXISTS owner (id INTEGER PRIMARY KEY CHECK (id = 1), host TEXT, pid INTEGER, since TEXT)',
    );
    lock
      .prepare('INSERT OR REPLACE INTO owner VALUES (1, ?, ?, ?)')
      .run(hostname(), process.pid, new Date().toISOString());
    lock.exec('COMMIT');
    return lock;
  } catch (err) {
    lock?.close();
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('SQLITE_BUSY')) {
      throw new StoreSetupError(
        'DATA_DIR',
        `DATA_DIR ${dir} is in use by another bridge process (${recordedOwner(dir)}); run one bridge per DATA_DIR, or set DATABASE_URL to share PostgreSQL between replicas`,
        { cause: err },
      );
    }
    if (isAccessError(err)) throw notWritable(dir, err);
    throw err;
  }
}

/**
 * The directory that really holds DATA_DIR's database: DATA_DIR itself, or where a symlinked
 * bridge.sqlite leads. The lock lives there, so one bridge runs per database file whatever path
 * leads to it. A database file with a second hard link (another name for the same file, which no
 * lock by path can see) is refused.
 */
export function storeDir(dir: string): string {
  const path = join(dir, DB_FILE);
  let link: ReturnType<typeof lstatSync>;
  try {
    link = lstatSync(path);
  } catch {
    return dir; // no database yet
  }
  if (link.isFile() && link.nlink > 1) {
    throw new StoreSetupError(
      'DATA_DIR',
      `${path} has ${link.nlink} hard links: another path leads to the same database file, where a second bridge ` +
        `would serve it beside this one. One bridge per database file: remove the other link (find it with: find / -xdev -samefile ${path})`,
    );
  }
  if (!link.isSymbolicLink()) return dir;
  try {
    return dirname(realpathSync(path));
  } catch (err) {
    throw new StoreSetupError(
      'DATA_DIR',
      `${path} is a symbolic link that leads nowhere (${(err as { code?: string }).code ?? err}); point it at the store or remove it`,
      { cause: err },
    );
  }
}

/** Creates DATA_DIR if missing (mode 0700) and checks that it is a writable directory. */
export function ensureDataDir(dir: string): void {
  try {
    const created = mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (created !== undefined) syncDir(dirname(created));
  } catch (err) {
    if (isAccessError(err)) throw notWritable(dir, err);
    if ((err as { code?: unknown }).code === 'EEXIST' || (err as { code?: unknown }).code === 'ENOTDIR') {
      throw new StoreSetupError('DATA_DIR', `DATA_DIR ${dir} exists but is not a directory`, { cause: err });
    }
    throw err;
  }
}

/** PG_VERSION is the first file initdb writes into a PostgreSQL (and so PGlite) data directory. */
export function isPGliteDir(dir: string): boolean {
  return existsSync(join(dir, 'PG_VERSION'));
}

export function pgliteRefusal(dir: string): StoreSetupError {
  return new StoreSetupError(
    'DATA_DIR',
    `DATA_DIR ${dir} holds a PGlite (embedded PostgreSQL) data directory from a development build that never shipped; this version cannot read it. Point DATA_DIR at a new directory (or move these files away)`,
  );
}

export function damaged(path: string, detail: string, cause?: unknown): StoreSetupError {
  return new StoreSetupError(
    'DATA_DIR',
    `${path} is damaged (${detail}); refusing to start rather than serve a broken or empty store. ` +
      `Restore ${DB_FILE} from a backup (stop the bridge, replace the file, remove ${DB_FILE}-wal and ${DB_FILE}-shm), ` +
      'or move it aside and start with --accept-empty-store to begin an empty store',
    { cause },
  );
}

/** Page cache of the start-up checks (PRAGMA cache_size: negative is KiB). */
const STARTUP_CACHE_SIZE = -1024;

/**
 * Page cache while serving: SQLite's own default of 2 MB rather than better-sqlite3's 16 MB, which
 * filled with every page written or read until it held 16 MB of RSS. A lookup's pages (the
 * B-trees' upper levels, its row) fit in 2 MB, and a miss is a read from the operating system's
 * page cache: in interleaved runs CPU per request stayed within a few percent either way.
 */
const SERVING_CACHE_SIZE = -2000;

/** quick_check: the B-tree structure and page checks, without the full index cross-check. */
export function quickCheck(db: Database.Database, path: string): void {
  let rows: Array<{ quick_check: string }>;
  try {
    rows = db.pragma('quick_check') as Array<{ quick_check: string }>;
  } catch (e) {
    throw damaged(path, (e as { code?: string }).code ?? (e as Error).message, e);
  }
  if (rows.length !== 1 || rows[0].quick_check !== 'ok') {
    throw damaged(
      path,
      `quick_check: ${rows
        .slice(0, 3)
        .map((r) => r.quick_check)
        .join('; ')}`,
    );
  }
}

/** Row counts: actually in the tables, and recorded by the triggers. */
export function rowCounts(db: Database.Database): Array<{ name: string; actual: number; recorded: number }> {
  const recorded = new Map(
    (db.prepare('SELECT name, n FROM row_counts').all() as Array<{ name: string; n: number }>).map((r) => [
      r.name,
      r.n,
    ]),
  );
  return COUNTED.map((name) => ({
    name,
    actual: (db.prepare(`SELECT count(*) AS n FROM ${name}`).get() as { n: number }).n,
    recorded: recorded.get(name) ?? 0,
  }));
}

export function missingRows(db: Database.Database): string | null {
  const short = rowCounts(db).filter((c) => c.actual < c.recorded);
  if (short.length === 0) return null;
  return short.map((c) => `${c.name}: ${c.actual} rows, ${c.recorded} recorded`).join(', ');
}

/** The `moved_to` mark as words: where to and when (never a password: the URL is not kept). */
export function describeMove(value: string): string {
  try {
    const m = JSON.parse(value) as { to?: string; at?: string };
    return `${m.to ?? 'a PostgreSQL database'}${m.at ? ` on ${m.at}` : ''}`;
  } catch {
    return 'a PostgreSQL database';
  }
}

/** Opens the embedded store in DATA_DIR with every start-up check. */
export function openEmbeddedStore(opts: EmbeddedStoreOptions): SqliteStore {
  const dir = resolve(opts.dataDir);
  const logger = opts.logger;
  ensureDataDir(dir);
  if (isPGliteDir(dir)) throw pgliteRefusal(dir);
  const lock = lockDataDir(dir);
  let db: Database.Database | undefined;
  try {
    const marker = readMarker(dir);
    const dbPath = join(dir, DB_FILE);
    if (marker && !existsSync(dbPath)) {
      if (!opts.acceptEmptyStore) {
        throw new StoreSetupError(
          'DATA_DIR',
          `${dbPath} is missing, but ${join(dir, MARKER_FILE)} says a store (id ${marker.storeId}) was created here; ` +
            `refusing to start empty. Restore ${DB_FILE} from a backup, or start with --accept-empty-store to begin an empty store`,
        );
      }
      logger?.warn(
        { dataDir: dir, storeId: marker.storeId },
        `--accept-empty-store: ${DB_FILE} was missing; starting an empty store`,
      );
    }
    try {
      createPrivate(dbPath);
      db = new Database(dbPath);
      // Fails with SQLITE_NOTADB on a file that is not a database.
      db.pragma('journal_mode = WAL');
    } catch (e) {
      if (isAccessError(e)) throw notWritable(dir, e);
      throw damaged(dbPath, (e as { code?: string }).code ?? (e as Error).message, e);
    }
    // The start-up checks read every page once (quick_check, the row counts): through a small page
    // cache, so that they do not leave the serving cache full of pages no request asked for (about
    // 17 MB of RSS at 100,000 users otherwise). The serving size is set before the store opens.
    db.pragma(`cache_size = ${STARTUP_CACHE_SIZE}`);
    quickCheck(db, dbPath);
    try {
      prepareDatabase(db, logger);
    } catch (e) {
      if (isAccessError(e)) throw notWritable(dir, e);
      throw e;
    }
    const database = db;
    const meta = (key: string) =>
      (
        database.prepare('SELECT value FROM store_meta WHERE key = ?').get(key) as
          | { value: string }
          | undefined
      )?.value;
    const setMeta = (key: string, value: string) =>
      database
        .prepare(
          'INSERT INTO store_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        )
        .run(key, value);

    let storeId = meta(STORE_ID_KEY);
    if (!storeId) {
      storeId = randomUUID();
      setMeta(STORE_ID_KEY, storeId);
    }
    if (marker && marker.storeId !== storeId) {
      if (!opts.acceptEmptyStore) {
        throw new StoreSetupError(
          'DATA_DIR',
          `${dbPath} is store ${storeId}, but ${join(dir, MARKER_FILE)} says this DATA_DIR holds store ${marker.storeId}: ` +
            `the database file was replaced or recreated. Restore the right ${DB_FILE} from a backup, or start with --accept-empty-store to adopt this one`,
        );
      }
      logger?.warn(
        { dataDir: dir, was: marker.storeId, now: storeId },
        `--accept-empty-store: adopting ${DB_FILE} as this DATA_DIR's store`,
      );
    }
    if (!marker || marker.storeId !== storeId) writeMarker(dir, storeId);

    const moved = meta(MOVED_KEY);
    if (moved) {
      const to = describeMove(moved);
      if (!opts.reuseMovedStore) {
        throw new StoreSetupError(
          'DATA_DIR',
          `the embedded store in DATA_DIR ${dir} was copied to PostgreSQL (${to}) by 'npm run store -- copy'; its records ` +
            'stop there, and serving it would answer from stale records. Set DATABASE_URL to that database to start on ' +
            'PostgreSQL. To go back to this embedded store anyway (writes made on PostgreSQL since are not in it), start once ' +
            'with --reuse-moved-store',
        );
      }
      database.prepare('DELETE FROM store_meta WHERE key = ?').run(MOVED_KEY);
      logger?.warn(
        { dataDir: dir, movedTo: to },
        '--reuse-moved-store: serving the embedded store that was copied to PostgreSQL; writes made there since are not in it',
      );
    }

    const missing = missingRows(db);
    if (missing) {
      if (!opts.acceptEmptyStore) {
        throw new StoreSetupError(
          'DATA_DIR',
          `${dbPath} holds fewer records than it recorded (${missing}): rows were removed outside the bridge or the file was replaced; ` +
            `refusing to start rather than serve missing users as deleted. Restore ${DB_FILE} from a backup, or start with --accept-empty-store to accept what is there`,
        );
      }
      logger?.warn(
        { dataDir: dir, missing },
        '--accept-empty-store: the store lost records; accepting what is there',
      );
      database.transaction(() => {
        for (const c of rowCounts(database))
          database.prepare('UPDATE row_counts SET n = ? WHERE name = ?').run(c.actual, c.name);
      })();
    }

    if (hasLegacyJournal(dir)) importLegacyJournal(db, dir, logger);
    setMeta(
      OWNER_KEY,
      JSON.stringify({ host: hostname(), pid: process.pid, since: new Date().toISOString() }),
    );
    db.pragma(`cache_size = ${SERVING_CACHE_SIZE}`);
    // Hands back what the checks left in SQLite's caches (pages, the schema's statements).
    db.pragma('shrink_memory');
    return new SqliteStore(db, { logger, file: dbPath, onClose: () => lock.close() });
  } catch (err) {
    db?.close();
    lock.close();
    throw err;
  }
}
