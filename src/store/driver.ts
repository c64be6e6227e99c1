// The only surface SqlStore (PostgreSQL) needs from a database library: pg behind it
// (postgres-driver.ts), a counting wrapper in tests. The embedded SQLite store is synchronous and
// uses better-sqlite3 directly (sqlite-store.ts).

/** Runs one parameterised statement ($1, $2, …) and returns its rows. */
export interface Queryable {
  query<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface SqlDriver extends Queryable {
  /**
   * Optional: query() for a lookup by key that runs often with other parameters (a user by id, by
   * userName): the driver may keep the statement prepared on each connection. Only for statements
   * whose best plan does not depend on the parameters' values.
   */
  queryPrepared?<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs fn inside BEGIN/COMMIT on one connection; rolls back and rethrows when fn throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Optional: runs the statements in one transaction, BEGIN and COMMIT written with them in one
   * batch (one round trip), and returns each statement's rows. Any failure rolls the whole back: the
   * first failing statement's as UnitStatementError (the connection's as the store's outage error).
   * Nothing is checked between the statements and COMMIT, so a condition that must undo the unit is
   * one the database raises, or the caller uses transaction().
   */
  unit?(statements: readonly { sql: string; params?: readonly unknown[] }[]): Promise<unknown[][]>;
  close(): Promise<void>;
  /**
   * Optional: one connection of its own, outside the query pool, until released (session-level
   * state such as advisory locks). `tier` names a separate set of connections: a holder of a
   * connection of one tier may wait for another tier's, never for its own, so tiers cannot starve
   * each other into a deadlock.
   */
  session?(tier: string): Promise<Session>;
}

export interface Session extends Queryable {
  /** Back to its tier; `broken` discards the connection instead (its session state is gone). */
  release(broken?: Error): void;
  /** Set when the connection failed while held (session locks are gone with it). */
  readonly failure: Error | undefined;
}

/** SqlDriver.unit: the statement at `index` failed with `cause`; nothing of the unit stayed. */
export class UnitStatementError extends Error {
  override readonly name = 'UnitStatementError';
  constructor(
    readonly index: number,
    override readonly cause: unknown,
  ) {
    super(
      `statement ${index} of the unit failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
      },
    );
  }
}
