// The only surface the SQL store needs from a database library. Both drivers (pg for PostgreSQL,
// PGlite for the legacy import) speak the same PostgreSQL dialect, so everything above this
// interface is shared.

/** Runs one parameterised statement ($1, $2, …) and returns its rows. */
export interface Queryable {
  query<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface SqlDriver extends Queryable {
  /** Runs fn inside BEGIN/COMMIT on one connection; rolls back and rethrows when fn throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
