import pg from 'pg';
import type { Logger } from 'pino';
import type { Queryable, SqlDriver } from './driver.js';

export interface PostgresDriverOptions {
  /** libpq-style URL; `?options=-c search_path=…` selects a schema, `sslmode=…` TLS. */
  connectionString: string;
  logger?: Logger;
}

/** A pg Pool: statements run on any idle connection, transactions pin one. */
export function openPostgresDriver(opts: PostgresDriverOptions): SqlDriver {
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    // Fail a request rather than hang it when the database is unreachable or the pool is drained.
    connectionTimeoutMillis: 10_000,
    application_name: 'volc-scim-bridge',
  });
  // Without a listener, an idle connection dropped by the server would crash the process.
  pool.on('error', (err) => opts.logger?.warn({ err }, 'idle PostgreSQL connection failed'));
  return new PostgresDriver(pool);
}

class PostgresDriver implements SqlDriver {
  constructor(private readonly pool: pg.Pool) {}

  query<T>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return run<T>(this.pool, sql, params);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn({
        query: <R>(sql: string, params?: readonly unknown[]) => run<R>(client, sql, params),
      });
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        // The connection is in an unknown state: have the pool discard it instead of reusing it.
        broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

async function run<T>(on: pg.Pool | pg.PoolClient, sql: string, params?: readonly unknown[]): Promise<T[]> {
  const result = await on.query(sql, params as unknown[] | undefined);
  return result.rows as T[];
}
