// The pg Pool behind SqlStore. Connection-class failures (server down, restarted, network cut,
// pool exhausted) become StoreUnavailableError here, once, so a PostgreSQL outage under a running
// bridge answers 503 with Retry-After instead of 500; everything else (constraint violations,
// syntax) passes through unchanged for sql-store.ts.
import type { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import { type Queryable, type Session, type SqlDriver, UnitStatementError } from './driver.js';
import { StoreSetupError, StoreUnavailableError } from './errors.js';
import { withTimeout } from './timeout.js';

export interface PostgresDriverOptions {
  /** libpq-style URL; `?options=-c search_path=…` selects a schema, `sslmode=…` TLS. */
  connectionString: string;
  logger?: Logger;
  /** Fail a request rather than hang it when the database is unreachable (default 10 s). */
  connectionTimeoutMillis?: number;
}

/**
 * TCP keepalive on every connection: a peer that vanished without a FIN or RST (a host gone, a
 * connection-tracking firewall that forgot the flow) is noticed by the OS instead of after hours.
 */
const KEEPALIVE = { keepAlive: true, keepAliveInitialDelayMillis: 10_000 } as const;

/**
 * A pg Pool: statements run on any idle connection, transactions pin one. Its connections pipeline
 * (pg's `pipeline` option): a transaction's statements are written without waiting for each answer,
 * so a transaction costs a round trip for its BEGIN+statements and one for its COMMIT, and a unit
 * (unit()) one in all.
 */
export function openPostgresDriver(opts: PostgresDriverOptions): SqlDriver {
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    connectionTimeoutMillis: opts.connectionTimeoutMillis ?? 10_000,
    application_name: 'volc-scim-bridge',
    pipeline: true,
    ...KEEPALIVE,
  });
  // Without a listener, an idle connection dropped by the server would crash the process.
  pool.on('error', (err) => opts.logger?.warn({ err }, 'idle PostgreSQL connection failed'));
  return new PostgresDriver(pool, opts);
}

/**
 * Runs `issue`, which sends statements on `client` without waiting, with the socket corked: pg writes
 * every protocol message on its own (a statement is five: Parse, Bind, Describe, Execute, Sync), a
 * syscall each; corked, a unit's whole pipelined batch leaves in one write.
 */
function corked<T>(client: pg.PoolClient, issue: () => T): T {
  const stream = (client as unknown as { connection?: { stream?: Partial<Writable> } }).connection?.stream;
  const cork = typeof stream?.cork === 'function' && typeof stream.uncork === 'function';
  if (cork) stream.cork!();
  try {
    return issue();
  } finally {
    if (cork) stream.uncork!();
  }
}

/** Connections per session tier (resource locks: one per resource a replica is changing). */
const SESSION_POOL_MAX = 16;

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);
// 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 53300 too many connections.
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** The secret-free reason when `err` means "PostgreSQL cannot be used right now", else null. */
export function unavailableReason(err: unknown): string | null {
  if (err instanceof StoreUnavailableError) return err.reason;
  if (typeof err !== 'object' || err === null) return null;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code)) return code;
    // SQLSTATE class 08: connection exception.
    if (/^08[0-9A-Z]{3}$/.test(code)) return code;
  }
  if (typeof message === 'string') {
    if (message.includes('timeout exceeded when trying to connect')) return 'connect timeout';
    if (message.includes('Connection terminated')) return 'connection terminated';
    if (message.includes('Client has encountered a connection error')) return 'connection error';
  }
  // AggregateError (happy eyeballs: one error per address) carries the codes inside.
  const errors = (err as { errors?: unknown }).errors;
  if (Array.isArray(errors)) for (const e of errors) if (unavailableReason(e)) return unavailableReason(e);
  return null;
}

function mapped(err: unknown): unknown {
  const reason = unavailableReason(err);
  return reason && !(err instanceof StoreUnavailableError)
    ? new StoreUnavailableError(`PostgreSQL: ${reason}`, { cause: err })
    : err;
}

/** A unit's statements before its own: BEGIN and the transaction id. */
const UNIT_PREAMBLE = 2;
/** The unit's transaction id (assigned now; the unit writes anyway), to ask its outcome by. */
const TRANSACTION_ID = 'SELECT txid_current()::text AS id';
/** 'committed', 'aborted' or 'in progress'; NULL for an id too old to tell (PostgreSQL 10 and later). */
const TRANSACTION_STATUS = 'SELECT txid_status($1::bigint) AS status';
/** How often, and how far apart, a transaction still 'in progress' is asked about again. */
const STATUS_ATTEMPTS = 5;
const STATUS_RETRY_MS = 200;
/** The longest the question may take in all; past it, the outcome is unknown. */
const STATUS_DEADLINE_MS = 2_000;

/** What unit() learnt on its connection: its rows, and whether the COMMIT's answer was lost. */
interface UnitOutcome {
  rows: unknown[][];
  lostCommit?: { transactionId: string; error: unknown };
}

/** Distinct statements given a name; texts past this many (none today: a few dozen) run unnamed. */
const MAX_NAMED_STATEMENTS = 500;

/**
 * Names for the statements of units (unit()) and of lookups by key (queryPrepared()). A named
 * statement is parsed and planned once per connection, then only bound and run: its text is not
 * sent again, nor parsed again by the server. Each is a write or a read by key (primary key,
 * request id, userName), so the plan PostgreSQL may settle on for a named statement (a generic
 * one, after five runs) is the one it would pick anyway. One name per SQL text for the driver's
 * lifetime: pg refuses a name reused for another text.
 */
class StatementNames {
  private readonly names = new Map<string, string>();

  of(sql: string): string | undefined {
    let name = this.names.get(sql);
    if (name === undefined && this.names.size < MAX_NAMED_STATEMENTS) {
      name = `stmt_${this.names.size}`;
      this.names.set(sql, name);
    }
    return name;
  }
}

class PostgresDriver implements SqlDriver {
  private readonly statementNames = new StatementNames();
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
        // A lock's statements (its timeout, the lock, its lease) go out together.
        pipeline: true,
        ...KEEPALIVE,
      });
      pool.on('error', (err) => this.opts.logger?.warn({ err }, 'idle PostgreSQL session connection failed'));
      this.sessionPools.set(tier, pool);
    }
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw mapped(err);
    }
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

  queryPrepared<T>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return run<T>(this.pool, sql, params, this.statementNames.of(sql));
  }

  /**
   * A pooled connection for `fn`, released after it; `fn` marks it broken (discarded by the pool)
   * when its state is unknown. A checked-out client whose connection dies (killed backend, network
   * cut) emits 'error': unhandled it would crash the process. The statement in flight rejects on
   * its own.
   */
  private async withClient<T>(
    fn: (client: pg.PoolClient, markBroken: (err: unknown) => void) => Promise<T>,
  ): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw mapped(err);
    }
    let broken: Error | undefined;
    const markBroken = (err: unknown) => {
      broken = err instanceof Error ? err : new Error(String(err));
    };
    client.on('error', markBroken);
    try {
      return await fn(client, markBroken);
    } finally {
      client.off('error', markBroken);
      client.release(broken);
    }
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.withClient(async (client, markBroken) => {
      try {
        // BEGIN goes out with the first statements (pipelined); its answer is read before COMMIT. A BEGIN
        // can fail only with the connection, which fails the statements behind it too.
        const result = await Promise.all(
          corked(client, () => [
            client.query('BEGIN'),
            fn({ query: <R>(sql: string, params?: readonly unknown[]) => run<R>(client, sql, params) }),
          ]),
        ).then(([, r]) => r);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          // The connection is in an unknown state: have the pool discard it instead of reusing it.
          markBroken(rollbackErr);
        }
        throw mapped(err);
      }
    });
  }

  /**
   * BEGIN, the statements and COMMIT in one pipelined batch. A failing statement aborts the
   * transaction, and PostgreSQL answers the COMMIT behind it with ROLLBACK: nothing of it stays.
   * The statements are named (StatementNames): a prepared statement outlives the transaction that
   * first parsed it, and one whose Parse was refused (in a transaction already aborted) is parsed
   * again next time (pg forgets a name whose statement failed before ParseComplete).
   *
   * The batch also reads the transaction's id, so that a COMMIT whose answer is lost with the
   * connection (the network or the server's host failing at that moment) is not left a guess: the
   * outcome is asked of PostgreSQL on another connection (transactionStatus). Committed, the unit
   * succeeded and its rows are returned; aborted or unknown, it fails as unavailable.
   */
  async unit(statements: readonly { sql: string; params?: readonly unknown[] }[]): Promise<unknown[][]> {
    const outcome = await this.withClient(async (client, markBroken): Promise<UnitOutcome> => {
      const { sent, committed } = corked(client, () => ({
        sent: [
          client.query('BEGIN'),
          client.query({ text: TRANSACTION_ID, name: this.statementNames.of(TRANSACTION_ID) }),
          ...statements.map(({ sql, params }) =>
            client.query({
              text: sql,
              values: params as unknown[] | undefined,
              name: this.statementNames.of(sql),
            }),
          ),
        ],
        committed: client.query('COMMIT'),
      }));
      // Read below, after the statements; a connection lost meanwhile must not reject it unheard.
      committed.catch(() => {});
      const settled = await Promise.allSettled(sent);
      // The first failure is the cause; the statements after it only report the aborted transaction.
      const at = settled.findIndex((a) => a.status === 'rejected');
      const failure = () => {
        const reason = (settled[at] as PromiseRejectedResult).reason;
        // BEGIN and the transaction id (at 0 and 1) fail only with the connection.
        return at <= 1 || unavailableReason(reason)
          ? mapped(reason)
          : new UnitStatementError(at - UNIT_PREAMBLE, reason);
      };
      const rows = () =>
        settled.slice(UNIT_PREAMBLE).map((a) => (a as PromiseFulfilledResult<pg.QueryResult>).value.rows);
      let ended: pg.QueryResult;
      try {
        ended = await committed;
      } catch (err) {
        markBroken(err);
        if (at >= 0) throw failure();
        // Every statement ran; the COMMIT's answer is missing. An error answer from the server (a
        // deferred check) means it did not commit; a lost connection leaves the outcome to be asked.
        if (!unavailableReason(err)) throw err;
        const [{ id }] = (settled[1] as PromiseFulfilledResult<pg.QueryResult<{ id: string }>>).value.rows;
        return { lostCommit: { transactionId: id, error: err }, rows: rows() };
      }
      if (at >= 0) throw failure();
      if (ended.command !== 'COMMIT')
        throw new Error(`the transaction ended in ${ended.command}, not COMMIT`);
      return { rows: rows() };
    });
    if (!outcome.lostCommit) return outcome.rows;
    if ((await this.transactionStatus(outcome.lostCommit.transactionId)) === 'committed') {
      this.opts.logger?.warn(
        { transactionId: outcome.lostCommit.transactionId },
        "a unit's COMMIT answer was lost with its connection; PostgreSQL confirms it committed",
      );
      return outcome.rows;
    }
    throw mapped(outcome.lostCommit.error);
  }

  /**
   * What PostgreSQL says of a transaction: 'committed', 'aborted', or, while its backend is still
   * finishing it, 'in progress' (asked again a few times); undefined when it cannot be asked.
   */
  private async transactionStatus(transactionId: string): Promise<string | undefined> {
    // Bounded as a whole: an unreachable server must not hold the request for a connect timeout.
    const giveUpAt = Date.now() + STATUS_DEADLINE_MS;
    for (let attempt = 0; attempt < STATUS_ATTEMPTS; attempt++) {
      const left = giveUpAt - Date.now();
      if (left <= 0) return undefined;
      let status: string | null | undefined;
      try {
        const asked = run<{ status: string | null }>(this.pool, TRANSACTION_STATUS, [transactionId]);
        [{ status }] = await withTimeout(asked, left);
      } catch {
        return undefined;
      }
      if (status !== 'in progress') return status ?? undefined;
      await delay(STATUS_RETRY_MS);
    }
    return undefined;
  }

  async close(): Promise<void> {
    const pools = [...this.sessionPools.values()];
    this.sessionPools.clear();
    await Promise.all([this.pool.end(), ...pools.map((p) => p.end())]);
  }
}

async function run<T>(
  on: pg.Pool | pg.PoolClient,
  sql: string,
  params?: readonly unknown[],
  name?: string,
): Promise<T[]> {
  try {
    const result = await on.query({ text: sql, values: params as unknown[] | undefined, name });
    return result.rows as T[];
  } catch (err) {
    throw mapped(err);
  }
}

/** host:port of a DATABASE_URL, never its user or password. */
export function describeTarget(connectionString: string): { where: string; database: string } {
  try {
    const url = new URL(connectionString);
    const host = url.hostname || 'localhost';
    const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres';
    return { where: `${host}:${url.port || '5432'}`, database };
  } catch {
    return { where: 'the configured host', database: 'the configured database' };
  }
}

/**
 * A failure while opening the PostgreSQL store, as the StoreSetupError an operator can act on
 * (naming DATABASE_URL and what to do); other errors are returned unchanged.
 */
export function startupError(err: unknown, connectionString: string): unknown {
  const { where, database } = describeTarget(connectionString);
  const code = (err as { code?: unknown } | null)?.code;
  const cause = err instanceof StoreUnavailableError ? err.cause : err;
  const causeCode = (cause as { code?: unknown } | null)?.code;
  if (code === '3D000' || causeCode === '3D000') {
    return new StoreSetupError(
      'DATABASE_URL',
      `database "${database}" does not exist at ${where}; create it first: createdb ${database}`,
      { cause: err },
    );
  }
  if (code === '28P01' || code === '28000') {
    return new StoreSetupError(
      'DATABASE_URL',
      `PostgreSQL at ${where} refused the login (${code}: authentication failed); check the user and password in DATABASE_URL`,
      { cause: err },
    );
  }
  if (code === '42501') {
    return new StoreSetupError(
      'DATABASE_URL',
      `the PostgreSQL user lacks a privilege the bridge needs (42501: ${(err as Error).message}); grant it CREATE on the schema, or run the migrations as its owner`,
      { cause: err },
    );
  }
  const reason = unavailableReason(err);
  if (reason) {
    return new StoreSetupError(
      'DATABASE_URL',
      `cannot connect to PostgreSQL at ${where} (${reason.replace(/^PostgreSQL: /, '')}); is the server running and reachable?`,
      { cause: err },
    );
  }
  return err;
}
