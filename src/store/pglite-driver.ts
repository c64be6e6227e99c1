import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { Queryable, SqlDriver } from './driver.js';

export interface PGliteDriverOptions {
  /** Directory holding the database files, created if missing; omitted: in memory (tests). */
  dataDir?: string;
}

/** Env var naming a dump of a fresh PGlite cluster (made by the test global setup) to start from. */
export const PGLITE_TEMPLATE_ENV = 'PGLITE_TEMPLATE_FILE';
const LOCK_FILE = 'volc-scim-bridge.lock';

/**
 * Embedded PostgreSQL (WASM) in this process: one instance, reused for every query (PGlite runs
 * one statement at a time). PGlite does not lock its directory, so the driver takes a lock file:
 * a second bridge on the same DATA_DIR refuses to start instead of corrupting it.
 */
export async function openPGliteDriver(opts: PGliteDriverOptions = {}): Promise<SqlDriver> {
  if (opts.dataDir === undefined) return new PGliteDriver(await createInMemory());
  const dataDir = resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  const lock = await takeLock(dataDir);
  try {
    return new PGliteDriver(await PGlite.create(dataDir), lock);
  } catch (e) {
    await lock();
    throw e;
  }
}

let template: Promise<Blob> | undefined;

/**
 * A fresh cluster runs initdb, which takes seconds in WASM. In-memory databases (tests) start
 * from a dump of a fresh cluster instead: from the file the test setup made, else from one
 * made by the first in-memory open of this process.
 */
async function createInMemory(): Promise<PGlite> {
  const file = process.env[PGLITE_TEMPLATE_ENV];
  if (!template && file && existsSync(file)) template = Promise.resolve(new Blob([readFileSync(file)]));
  if (template) return PGlite.create({ loadDataDir: await template });
  const db = await PGlite.create();
  template = db.dumpDataDir('none').then((dump) => dump as Blob);
  await template;
  return db;
}

/** Writes a dump of a fresh cluster to `file` (used once by the test global setup). */
export async function writePGliteTemplate(file: string): Promise<void> {
  const db = await PGlite.create();
  const dump = (await db.dumpDataDir('none')) as Blob;
  await db.close();
  const { writeFile } = await import('node:fs/promises');
  await writeFile(file, Buffer.from(await dump.arrayBuffer()));
}

/** Exclusive lock on DATA_DIR; returns its release. A lock left by a dead process is taken over. */
async function takeLock(dataDir: string): Promise<() => Promise<void>> {
  const path = join(dataDir, LOCK_FILE);
  const owner = `${hostname()} ${process.pid}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(owner);
      await handle.close();
      return () => rm(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const [host, pidText] = (await readFile(path, 'utf8').catch(() => '')).split(' ');
      const pid = Number(pidText);
      const alive = host === hostname() && pid !== process.pid && pid > 0 && isAlive(pid);
      if (alive) {
        throw new Error(
          `DATA_DIR ${dataDir} is in use by process ${pid}; run one bridge per DATA_DIR, or set DATABASE_URL to share PostgreSQL between replicas`,
        );
      }
      await rm(path, { force: true });
    }
  }
  throw new Error(`could not lock DATA_DIR ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

class PGliteDriver implements SqlDriver {
  constructor(
    private readonly db: PGlite,
    private readonly release?: () => Promise<void>,
  ) {}

  query<T>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return run<T>(this.db, sql, params);
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    // PGlite holds its transaction mutex for the whole callback, so statements issued on `db`
    // meanwhile wait: other requests queue behind the transaction instead of interleaving.
    return this.db.transaction((tx) =>
      fn({ query: <R>(sql: string, params?: readonly unknown[]) => run<R>(tx, sql, params) }),
    );
  }

  async close(): Promise<void> {
    await this.db.close();
    await this.release?.();
  }
}

async function run<T>(on: PGlite | Transaction, sql: string, params?: readonly unknown[]): Promise<T[]> {
  const result = await on.query<T>(sql, params as unknown[] | undefined);
  return result.rows;
}
