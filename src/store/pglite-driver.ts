// Embedded PostgreSQL (WASM). Earlier versions kept the embedded store here; it is now only read
// once, by the legacy import (legacy-import.ts), which loads this module with a dynamic import so
// that PGlite is never loaded otherwise.
import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { Queryable, SqlDriver } from './driver.js';

/**
 * Opens the PGlite cluster in `dataDir` (created if missing). Takes no lock: PGlite does not lock its
 * directory, so the caller must hold the DATA_DIR lock (data-dir-lock.ts).
 */
export async function openPGliteDriver(dataDir: string): Promise<SqlDriver> {
  return new PGliteDriver(await PGlite.create(dataDir));
}

/** One instance, reused for every query (PGlite runs one statement at a time). */
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
