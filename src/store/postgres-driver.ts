import pg from 'pg';
import type { Logger } from 'pino';
import type { Queryable, Session, SqlDriver } from './driver.js';

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
  return new PostgresDriver(pool, opts);
}

/** Connections per session tier (resource locks: one per resource a replica is changing). */
const SESSION_POOL_MAX = 16;

class PostgresDriver implements SqlDriver {
  /** Session connections live in pools of their own: a lock holder's queries never wait behind locks. */
  private readonly sessionPools = new Map<string, pg.Pool>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly opts: PostgresDriverOptions,
  ) {}

  async session(tier: string): Promise<Session> {
    let pool = this.sessionPools.get(tier);
    if (!pool) {
      pool = new pg.Pool({
        connectionString: this.opts.connectionString,
        connectionTimeoutMillis: 10_000,
        max: SESSION_POOL_MAX,
        application_name: 'volc-scim-bridge',
      });
      pool.on('error', (err) => this.opts.logger?.warn({ err }, 'idle PostgreSQL session connection failed'));
      this.sessionPools.set(tier, pool);
    }
    const client = await pool.connect();
    let failure: Error | undefined;
    // A checked-out client that loses its connection emits 'error': unhandled, it would crash the process.
    const onError = (err: Error) => {
      failure = err;
    };
    client.on('error', onError);
    let released = false;
    return {
      query: <R>(sql: string, params?: readonly unknown[]) => run<R>(client, sql, params),
      get failure() {
        return failure;
      },
      release(broken?: Error) {
        if (released) return;
        released = true;
        client.off('error', onError);
        client.release(broken ?? failure);
      },
    };
  }

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

  async close(): Promise<void> {
    const pools = [...this.sessionPools.values()];
    this.sessionPools.clear();
    await Promise.all([this.pool.end(), ...pools.map((p) => p.end())]);
  }
}

async function run<T>(on: pg.Pool | pg.PoolClient, sql: string, params?: readonly unknown[]): Promise<T[]> {
  const result = await on.query(sql, params as unknown[] | undefined);
  return result.rows as T[];
}
