// A read-only look at the configured store for --check-config: it fails on what `npm start` would
// fail on, and changes nothing (no file, directory, table or row is created).
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { type CloudIdentity, checkBinding } from './binding.js';
import {
  DB_FILE,
  describeMove,
  isPGliteDir,
  MARKER_FILE,
  MOVED_KEY,
  missingRows,
  pgliteRefusal,
  readMarker,
  STORE_ID_KEY,
} from './data-dir.js';
import { StoreSetupError } from './errors.js';
import { FIRST_START_KEY } from './first-start.js';
import { SQLITE_SCHEMA_VERSION } from './sqlite-migrations.js';

export interface StoreInspection {
  ok: boolean;
  /** What `npm start` would refuse, one sentence each, naming the setting. */
  problems: string[];
  /** One line on what was found, for the OK case. */
  summary: string;
  /**
   * A new store with no users or groups that has not passed a first start: `npm start` refuses it
   * when CloudIdentity already holds users (first-start.ts).
   */
  newAndEmpty?: boolean;
}

export interface InspectOptions {
  databaseUrl?: string;
  dataDir?: string;
  upstream?: CloudIdentity;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export async function inspectStore(opts: InspectOptions): Promise<StoreInspection> {
  return opts.databaseUrl
    ? inspectPostgres(opts.databaseUrl, opts.upstream)
    : inspectDataDir(opts.dataDir ?? './data', opts.upstream);
}

/** The nearest existing ancestor must be a writable directory for mkdir -p to work. */
function creatable(dir: string): string | null {
  let at = dir;
  while (!existsSync(at)) {
    const parent = dirname(at);
    if (parent === at) break;
    at = parent;
  }
  try {
    if (!statSync(at).isDirectory()) return `DATA_DIR ${dir}: ${at} is not a directory`;
    accessSync(at, constants.W_OK | constants.X_OK);
    return null;
  } catch {
    const uid = typeof process.getuid === 'function' ? process.getuid() : '?';
    return `DATA_DIR ${dir}: the directory must be writable by uid ${uid} (the bridge runs as uid ${uid}); ${at} is not`;
  }
}

async function inspectDataDir(dataDir: string, upstream?: CloudIdentity): Promise<StoreInspection> {
  const dir = resolve(dataDir);
  const problems: string[] = [];
  const fail = (p: string) => ({
    ok: false,
    problems: [...problems, p],
    summary: `embedded store in DATA_DIR ${dir}`,
  });
  const writable = creatable(dir);
  if (writable) return fail(writable);
  if (!existsSync(dir))
    return {
      ok: true,
      problems,
      summary: `embedded store: DATA_DIR ${dir} will be created`,
      newAndEmpty: true,
    };
  if (isPGliteDir(dir)) return fail(pgliteRefusal(dir).message);
  let marker: ReturnType<typeof readMarker>;
  try {
    marker = readMarker(dir);
  } catch (e) {
    return fail(message(e));
  }
  const dbPath = join(dir, DB_FILE);
  if (!existsSync(dbPath)) {
    if (marker) {
      return fail(
        `DATA_DIR: ${dbPath} is missing, but ${join(dir, MARKER_FILE)} says a store was created here; restore it from a backup, or start with --accept-empty-store`,
      );
    }
    return {
      ok: true,
      problems,
      summary: `embedded store: a new store will be created in DATA_DIR ${dir}`,
      newAndEmpty: true,
    };
  }
  let db: Database.Database | undefined;
  try {
    db = new Database(dbPath, { readonly: true, fileMustExist: true, timeout: 2000 });
    const rows = db.pragma('quick_check') as Array<{ quick_check: string }>;
    if (rows.length !== 1 || rows[0].quick_check !== 'ok') {
      return fail(
        `DATA_DIR: ${dbPath} is damaged (quick_check: ${rows[0]?.quick_check}); restore it from a backup`,
      );
    }
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === 0)
      return {
        ok: true,
        problems,
        summary: `embedded store in DATA_DIR ${dir} (not yet initialised)`,
        newAndEmpty: true,
      };
    const meta = async (key: string) =>
      (db!.prepare('SELECT value FROM store_meta WHERE key = ?').get(key) as { value: string } | undefined)
        ?.value ?? null;
    const storeId = await meta(STORE_ID_KEY);
    if (marker && storeId && marker.storeId !== storeId) {
      problems.push(
        `DATA_DIR: ${dbPath} is store ${storeId}, but the marker says ${marker.storeId}: the database file was replaced`,
      );
    }
    const missing = missingRows(db);
    if (missing) problems.push(`DATA_DIR: ${dbPath} holds fewer records than it recorded (${missing})`);
    const moved = await meta(MOVED_KEY);
    if (moved)
      problems.push(
        `DATA_DIR: the embedded store in DATA_DIR ${dir} was copied to PostgreSQL (${describeMove(moved)}); set DATABASE_URL to that database, or start once with --reuse-moved-store`,
      );
    if (upstream) {
      const binding = await checkBinding({ getMeta: meta }, upstream, `DATA_DIR ${dir}`);
      if (binding) problems.push(binding);
    }
    const users = (db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
    const groups = (db.prepare('SELECT count(*) AS n FROM groups').get() as { n: number }).n;
    return {
      ok: problems.length === 0,
      problems,
      newAndEmpty: users === 0 && groups === 0 && (await meta(FIRST_START_KEY)) === null,
      summary: `embedded store in DATA_DIR ${dir}: ${users} users, schema ${version}${version > SQLITE_SCHEMA_VERSION ? ` (newer than this build's ${SQLITE_SCHEMA_VERSION})` : ''}`,
    };
  } catch (e) {
    const code = (e as { code?: string }).code;
    return fail(`DATA_DIR: ${dbPath} cannot be read (${code ?? message(e)}); restore it from a backup`);
  } finally {
    db?.close();
  }
}

async function inspectPostgres(databaseUrl: string, upstream?: CloudIdentity): Promise<StoreInspection> {
  const [{ openPostgresDriver, startupError, describeTarget }, { MIGRATIONS }] = await Promise.all([
    import('./postgres-driver.js'),
    import('./migrations.js'),
  ]);
  const { where } = describeTarget(databaseUrl);
  const driver = openPostgresDriver({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  const problems: string[] = [];
  try {
    const [{ exists }] = await driver.query<{ exists: boolean }>(
      "SELECT to_regclass('schema_migrations') IS NOT NULL AS exists",
    );
    if (!exists)
      return {
        ok: true,
        problems,
        summary: `PostgreSQL at ${where}: empty, the schema will be created`,
        newAndEmpty: true,
      };
    const rows = await driver.query<{ version: number }>('SELECT version FROM schema_migrations');
    const known = new Set(MIGRATIONS.map((m) => m.version));
    const newer = rows.map((r) => r.version).filter((v) => !known.has(v));
    // A newer build migrated ahead (rolling deploy): its migrations are additive, start only warns.
    const ahead = newer.length > 0 ? `; migrations this build does not know: ${newer.join(', ')}` : '';
    const [{ meta }] = await driver.query<{ meta: boolean }>(
      "SELECT to_regclass('store_meta') IS NOT NULL AS meta",
    );
    if (meta && upstream) {
      const binding = await checkBinding(
        {
          getMeta: async (key) =>
            (await driver.query<{ value: string }>('SELECT value FROM store_meta WHERE key = $1', [key]))[0]
              ?.value ?? null,
        },
        upstream,
        'the PostgreSQL database of DATABASE_URL',
      );
      if (binding) problems.push(binding);
    }
    const [held] = meta
      ? await driver.query<{ first: boolean; empty: boolean }>(
          `SELECT EXISTS (SELECT 1 FROM store_meta WHERE key = $1) AS first,
                  NOT EXISTS (SELECT 1 FROM users) AND NOT EXISTS (SELECT 1 FROM groups) AS empty`,
          [FIRST_START_KEY],
        )
      : [{ first: false, empty: true }];
    return {
      ok: problems.length === 0,
      problems,
      summary: `PostgreSQL at ${where}: ${rows.length} migrations applied${ahead}`,
      newAndEmpty: !held.first && held.empty,
    };
  } catch (e) {
    const err = startupError(e, databaseUrl);
    const text = err instanceof StoreSetupError ? err.message : `DATABASE_URL: ${message(err)}`;
    return { ok: false, problems: [...problems, text], summary: `PostgreSQL at ${where}` };
  } finally {
    await driver.close().catch(() => {});
  }
}
