// Kills a PostgreSQL backend at an exact statement, for deterministic "connection lost mid-
// transaction" tests: a connection of the test's own holds a lock (a row FOR UPDATE, a table in
// SHARE mode) that a statement of the code under test needs; that statement queues behind it, its
// backend is found as the one the holder blocks, and pg_terminate_backend kills it there: after the
// statements before it ran, before the transaction's COMMIT is processed. No timers: the waiter is
// polled for until it is there.
import pg from 'pg';

/** What the killed backend was doing when it died. */
export interface Victim {
  pid: number;
  /** The statement it was waiting in. */
  query: string;
  /** Tables its transaction had written to (RowExclusiveLock granted), sorted. */
  wrote: string[];
}

export class LockHolder {
  private holding = false;

  private constructor(
    /** Holds the locks, inside a transaction. */
    private readonly holder: pg.Client,
    /** Finds and kills waiters (outside any transaction: pg_stat_activity is snapshotted per transaction). */
    private readonly watcher: pg.Client,
    private readonly holderPid: number,
  ) {}

  /** Two connections to `url` (a test schema's, so that table names resolve). */
  static async connect(url: string): Promise<LockHolder> {
    const open = async () => {
      const client = new pg.Client({ connectionString: url, application_name: 'test-lock-holder' });
      // A connection dropped by the server would otherwise crash the worker.
      client.on('error', () => {});
      await client.connect();
      return client;
    };
    const holder = await open();
    const watcher = await open();
    const [{ pid }] = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows;
    return new LockHolder(holder, watcher, pid);
  }

  /** Runs `lockSql` (e.g. `SELECT … FOR UPDATE`, `LOCK TABLE …`) in the holder's transaction. */
  async hold(lockSql: string, params?: unknown[]): Promise<void> {
    if (!this.holding) {
      await this.holder.query('BEGIN');
      this.holding = true;
    }
    await this.holder.query(lockSql, params);
  }

  /**
   * Waits until exactly one backend queues behind the held locks, and terminates it (waiting for it
   * to be gone). The locks stay held. `work`, the code expected to queue: when it ends first, the
   * wait fails at once, saying how it ended.
   */
  async killNextWaiter(work?: Promise<unknown>): Promise<Victim> {
    const until = Date.now() + 20_000;
    let ended: string | undefined;
    work?.then(
      (value) => {
        ended = `it ended first, with ${describe(value)}`;
      },
      (err: unknown) => {
        ended = `it failed first: ${describe(err)}`;
      },
    );
    let waiters: Array<{ pid: number; query: string }> = [];
    for (;;) {
      waiters = (
        await this.watcher.query<{ pid: number; query: string }>(
          'SELECT pid, query FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))',
          [this.holderPid],
        )
      ).rows;
      if (waiters.length > 0) break;
      if (ended) throw new Error(`nothing queued behind the held lock: ${ended}`);
      if (Date.now() > until) throw new Error('no backend ever queued behind the held lock');
      await new Promise((r) => setTimeout(r, 5));
    }
    if (waiters.length !== 1) throw new Error(`${waiters.length} backends queued behind the held lock`);
    const [{ pid, query }] = waiters;
    const wrote = (
      await this.watcher.query<{ name: string }>(
        `SELECT DISTINCT c.relname AS name FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
         WHERE l.pid = $1 AND l.granted AND l.mode = 'RowExclusiveLock' AND c.relkind = 'r' ORDER BY 1`,
        [pid],
      )
    ).rows.map((r) => r.name);
    const [{ ok }] = (
      await this.watcher.query<{ ok: boolean }>('SELECT pg_terminate_backend($1, 10000) AS ok', [pid])
    ).rows;
    if (!ok) throw new Error(`backend ${pid} did not end`);
    return { pid, query, wrote };
  }

  /** Rolls the holder's transaction back: its locks are gone. */
  async release(): Promise<void> {
    if (!this.holding) return;
    this.holding = false;
    await this.holder.query('ROLLBACK');
  }

  async end(): Promise<void> {
    await this.release().catch(() => {});
    await Promise.all([this.holder.end(), this.watcher.end()]);
  }
}

/** A short description of what the awaited work gave: an HTTP answer's status, else its kind. */
function describe(value: unknown): string {
  const status = (value as { status?: unknown } | null)?.status;
  if (typeof status === 'number') return `status ${status}`;
  return value instanceof Error ? `${value.name}: ${value.message}` : String(value);
}
