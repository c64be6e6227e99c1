import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { Queryable, SqlDriver } from './driver.js';

export interface PGliteDriverOptions {
  /** Directory holding the database files, created if missing; omitted: in memory (tests). */
  dataDir?: string;
}

/**
 * Embedded PostgreSQL (WASM) in this process: one instance, reused for every query (PGlite runs
 * one statement at a time). PGlite does not lock its directory, so a second process opening the
 * same DATA_DIR would write the same files unnoticed: run one bridge per DATA_DIR.
 * A fresh database runs initdb, which takes seconds; tests should share one instance per file.
 */
export async function openPGliteDriver(opts: PGliteDriverOptions = {}): Promise<SqlDriver> {
  let dataDir = 'memory://';
  if (opts.dataDir !== undefined) {
    dataDir = resolve(opts.dataDir);
    await mkdir(dataDir, { recursive: true });
  }
  return new PGliteDriver(await PGlite.create(dataDir));
}

class PGliteDriver implements SqlDriver {
  constructor(private readonly db: PGlite) {}

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

  close(): Promise<void> {
    return this.db.close();
  }
}

async function run<T>(on: PGlite | Transaction, sql: string, params?: readonly unknown[]): Promise<T[]> {
  const result = await on.query<T>(sql, params as unknown[] | undefined);
  return result.rows;
}
