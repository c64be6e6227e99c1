// The only surface SqlStore (PostgreSQL) needs from a database library: pg behind it
// (postgres-driver.ts), a counting wrapper in tests. The embedded SQLite store is synchronous and
// uses better-sqlite3 directly (sqlite-store.ts).

/** Runs one parameterised statement ($1, $2, …) and returns its rows. */
export interface Queryable {
  query<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface SqlDriver extends Queryable {
  /** Runs fn inside BEGIN/COMMIT on one connection; rolls back and rethrows when fn throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
