import type { NextFunction, Request, Response } from 'express';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import type { Config } from '../config.js';
import { ScimError } from '../scim-model/scim-error.js';
import type { CallPacer } from '../volcengine/client.js';
import type { Metrics } from './metrics.js';

// The bridge's rate limits, counted by rate-limiter-flexible: in memory for one process, or in a
// PostgreSQL table (RATE_LIMIT_TABLE, created by the library in the store's schema) when
// DATABASE_URL is set, so that replicas share one count and a limit holds for the whole deployment.
// A PostgreSQL limiter falls back to an in-memory one of the same settings while the database
// cannot be reached (the store is then unavailable anyway; the limits must not add a failure).
//
//   SCIM requests     per token (its label or fingerprint, never the token), SCIM_RATE_LIMIT per
//                     second averaged over 10 s windows → 429 + Retry-After
//   console sign-in   failed sign-ins (form, or a wrong admin bearer) per client address,
//                     ADMIN_SIGNIN_MAX_FAILURES per ADMIN_SIGNIN_WINDOW_SECONDS → 429 + Retry-After
//   CloudIdentity     VOLCENGINE_MAX_RPS calls per second; callers wait for a slot (in order)
//                     rather than fail; halved for VOLCENGINE_THROTTLE_COOLDOWN_MS after a
//                     FlowLimitExceeded answer, then restored

export const RATE_LIMIT_TABLE = 'rate_limits';
/** Length of one SCIM counting window; the limit is per second, averaged over it. */
export const SCIM_WINDOW_SECONDS = 10;

type Settings = Config['rateLimits'];

interface LimiterSpec {
  keyPrefix: string;
  points: number;
  duration: number;
  /** Refuse from memory, without a database round trip, once a key has used this many points. */
  blockInMemoryAt?: number;
}

/** What the SCIM middleware asks of its limiter (rate-limiter-flexible's consume, or Reserving). */
interface ScimLimiter {
  readonly points: number;
  consume(key: string): Promise<unknown>;
}

/**
 * Points a replica reserves of a shared SCIM window at a time: a hundredth of the window's points
 * (at most 20), so a replica refuses at most that many points early (those reserved by another
 * replica and not used before the window ends); 1 (a statement per request, nothing reserved) below
 * 200 points.
 */
export const reservationSize = (points: number) => Math.min(20, Math.max(1, Math.floor(points / 100)));

/**
 * A shared count taken a few points at a time: one statement reserves `batch` points of the key's
 * window, and the requests that follow are admitted from them in memory until they run out or the
 * window ends (unused ones lapse with it). A point is admitted only once reserved, so the deployment
 * never admits more than the limit. A reservation that crosses the limit still holds the points
 * below it (the count went up by `batch` at once: those under the limit are this replica's); once
 * none is left the key is refused from memory until the window ends, without a statement.
 */
export class Reserving implements ScimLimiter {
  private readonly keys = new Map<
    string,
    { left: number; until: number; blockedUntil: number; pending?: Promise<void> }
  >();
  readonly points: number;

  constructor(
    private readonly shared: RateLimiterAbstract,
    private readonly batch: number,
    private readonly now: () => number = Date.now,
  ) {
    this.points = shared.points;
  }

  async consume(key: string): Promise<void> {
    for (;;) {
      let state = this.keys.get(key);
      const now = this.now();
      if (state && now >= state.until && now >= state.blockedUntil && !state.pending) {
        this.keys.delete(key);
        state = undefined;
      }
      if (state && now < state.blockedUntil) {
        throw new RateLimiterRes(0, state.blockedUntil - now, this.points + 2);
      }
      if (state && state.left > 0 && now < state.until) {
        state.left--;
        return;
      }
      if (state?.pending) {
        await state.pending;
        continue;
      }
      const entry = state ?? { left: 0, until: 0, blockedUntil: 0 };
      this.keys.set(key, entry);
      const reserved = this.reserve(entry, key);
      // Others wait for the reservation, then look again; its outcome is this request's alone.
      entry.pending = reserved.then(
        () => undefined,
        () => undefined,
      );
      try {
        const refusal = await reserved;
        if (refusal) throw refusal;
      } finally {
        entry.pending = undefined;
      }
      // Admitted: its point is the first of the reservation.
      return;
    }
  }

  /**
   * Reserves points into `entry`, one of them for the caller; resolves with the refusal when none
   * was left, rejects when the count could not be taken.
   */
  private async reserve(
    entry: { left: number; until: number; blockedUntil: number },
    key: string,
  ): Promise<RateLimiterRes | undefined> {
    let res: RateLimiterRes;
    try {
      res = await this.shared.consume(key, this.batch);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      res = rejection;
    }
    const now = this.now();
    const ours = Math.min(this.batch, this.points - (res.consumedPoints - this.batch));
    if (ours > 0) {
      // One of them admits the request that reserved them.
      entry.left = ours - 1;
      entry.until = now + res.msBeforeNext;
      return undefined;
    }
    entry.left = 0;
    entry.blockedUntil = now + res.msBeforeNext;
    // The first refusal of the window (the middleware logs it once).
    return new RateLimiterRes(0, res.msBeforeNext, this.points + 1);
  }
}

function limiterSpecs(settings: Settings): {
  scim?: LimiterSpec;
  signin: LimiterSpec;
  upstream?: [LimiterSpec, LimiterSpec];
} {
  const scimPoints = settings.scimPerSecond * SCIM_WINDOW_SECONDS;
  const upstream = (points: number): LimiterSpec => ({ keyPrefix: 'upstream', points, duration: 1 });
  return {
    ...(scimPoints > 0
      ? {
          scim: {
            keyPrefix: 'scim',
            points: scimPoints,
            duration: SCIM_WINDOW_SECONDS,
            blockInMemoryAt: scimPoints,
          },
        }
      : {}),
    signin: {
      keyPrefix: 'signin',
      points: settings.signinMaxFailures,
      duration: settings.signinWindowSeconds,
    },
    // The same key prefix twice: one count, refused at the ceiling or at half of it.
    ...(settings.upstreamMaxRps > 0
      ? {
          upstream: [
            upstream(settings.upstreamMaxRps),
            upstream(Math.max(1, Math.floor(settings.upstreamMaxRps / 2))),
          ],
        }
      : {}),
  };
}

/**
 * The limiters' table (the library's own shape), created under a transaction-scoped advisory lock so
 * that replicas starting together do not race on it.
 */
async function createTable(pool: Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      `SELECT pg_advisory_xact_lock(hashtext('volc-scim-bridge/rate-limits/' || coalesce(current_schema(), '')))`,
    );
    await client.query(`CREATE TABLE IF NOT EXISTS ${RATE_LIMIT_TABLE} (
      key varchar(255) PRIMARY KEY,
      points integer NOT NULL DEFAULT 0,
      expire bigint
    )`);
    await client.query('COMMIT');
    client.release();
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    client.release(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}

function postgresLimiter(pool: Pool): (spec: LimiterSpec) => RateLimiterAbstract {
  return (spec) =>
    new RateLimiterPostgres({
      storeClient: pool,
      storeType: 'pool',
      tableName: RATE_LIMIT_TABLE,
      // Created once by createTable (the library's own CREATE TABLE IF NOT EXISTS races when
      // several limiters or replicas start together: "type rate_limits already exists").
      tableCreated: true,
      keyPrefix: spec.keyPrefix,
      points: spec.points,
      duration: spec.duration,
      ...(spec.blockInMemoryAt ? { inMemoryBlockOnConsumed: spec.blockInMemoryAt } : {}),
      insuranceLimiter: new RateLimiterMemory({
        keyPrefix: spec.keyPrefix,
        points: spec.points,
        duration: spec.duration,
      }),
    });
}

/** The SCIM count in PostgreSQL: reserved a few points at a time once the limit is high enough. */
function sharedScimLimiter(make: (spec: LimiterSpec) => RateLimiterAbstract, spec: LimiterSpec): ScimLimiter {
  const batch = reservationSize(spec.points);
  if (batch === 1) return make(spec);
  // Reserving refuses from memory itself; the library's in-memory block would answer a reservation
  // that crosses the limit with a count of its own, not the table's.
  return new Reserving(make({ ...spec, blockInMemoryAt: undefined }), batch);
}

/** Seconds to announce in Retry-After: at least 1, rounded up. */
const retryAfterSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export interface RateLimitsOptions {
  /** Share the counts through this PostgreSQL database (the store's DATABASE_URL); else memory. */
  databaseUrl?: string;
  metrics?: Metrics;
  logger?: Logger;
}

export class RateLimits {
  private constructor(
    readonly settings: Settings,
    /** undefined: SCIM_RATE_LIMIT=0. */
    private readonly scimLimiter: ScimLimiter | undefined,
    private readonly signinLimiter: RateLimiterAbstract,
    /** undefined: VOLCENGINE_MAX_RPS=0. */
    readonly upstream: UpstreamPacer | undefined,
    private readonly metrics: Metrics | undefined,
    private readonly pool: Pool | undefined,
    /** Whether the counts live in PostgreSQL (shared by replicas). */
    readonly shared: boolean,
  ) {}

  /** Counts in this process only (no DATABASE_URL, or tests). */
  static inMemory(settings: Settings, options: Omit<RateLimitsOptions, 'databaseUrl'> = {}): RateLimits {
    const specs = limiterSpecs(settings);
    const memory = (spec: LimiterSpec) =>
      new RateLimiterMemory({ keyPrefix: spec.keyPrefix, points: spec.points, duration: spec.duration });
    return RateLimits.assemble(settings, options, undefined, {
      scim: specs.scim && memory(specs.scim),
      signin: memory(specs.signin),
      upstream: specs.upstream && [memory(specs.upstream[0]), memory(specs.upstream[1])],
    });
  }

  /** Counts in PostgreSQL when `databaseUrl` is given (creating the table if need be), else in memory. */
  static async open(settings: Settings, options: RateLimitsOptions = {}): Promise<RateLimits> {
    if (!options.databaseUrl) return RateLimits.inMemory(settings, options);
    // Loaded only here: counting in memory (the embedded store) needs no PostgreSQL driver.
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: 4,
      // A slow or unreachable database falls back to counting in memory (insuranceLimiter) after
      // this long, instead of holding requests.
      connectionTimeoutMillis: 2_000,
      query_timeout: 2_000,
      application_name: 'volc-scim-bridge rate limits',
    });
    // Without a listener, an idle connection dropped by the server would crash the process.
    pool.on('error', (err) => options.logger?.warn({ err }, 'idle PostgreSQL rate-limit connection failed'));
    const make = postgresLimiter(pool);
    const specs = limiterSpecs(settings);
    try {
      await createTable(pool);
      const scim = specs.scim && sharedScimLimiter(make, specs.scim);
      const signin = make(specs.signin);
      const upstream: [RateLimiterAbstract, RateLimiterAbstract] | undefined = specs.upstream && [
        make(specs.upstream[0]),
        make(specs.upstream[1]),
      ];
      return RateLimits.assemble(settings, options, pool, { scim, signin, upstream });
    } catch (err) {
      await pool.end().catch(() => {});
      const { code, message } = err as { code?: string; message?: string };
      throw new Error(
        `DATABASE_URL: cannot create the rate-limit table ${RATE_LIMIT_TABLE} in the store's schema (${code ?? 'error'}: ${message}); grant the bridge's PostgreSQL user CREATE on it`,
        { cause: err },
      );
    }
  }

  private static assemble(
    settings: Settings,
    options: Omit<RateLimitsOptions, 'databaseUrl'>,
    pool: Pool | undefined,
    limiters: {
      scim: ScimLimiter | undefined;
      signin: RateLimiterAbstract;
      upstream: [RateLimiterAbstract, RateLimiterAbstract] | undefined;
    },
  ): RateLimits {
    const pacer = limiters.upstream
      ? new UpstreamPacer({
          full: limiters.upstream[0],
          lowered: limiters.upstream[1],
          cooldownMs: settings.upstreamCooldownMs,
          metrics: options.metrics,
          logger: options.logger?.child({ component: 'rate-limits' }),
        })
      : undefined;
    return new RateLimits(
      settings,
      limiters.scim,
      limiters.signin,
      pacer,
      options.metrics,
      pool,
      pool !== undefined,
    );
  }

  /**
   * Express middleware for the SCIM router, after bearerAuth: counts the request against its
   * token and answers 429 with Retry-After past the limit. None (undefined) when SCIM_RATE_LIMIT=0.
   * `clientOf` names the client a request counts against (the token's label, which bearerAuth set).
   */
  scimMiddleware(clientOf: (res: Response) => string | undefined) {
    const limiter = this.scimLimiter;
    const perSecond = this.settings.scimPerSecond;
    if (!limiter) return undefined;
    return async (req: Request, res: Response, next: NextFunction) => {
      const client = clientOf(res) ?? 'unknown';
      try {
        await limiter.consume(client);
        next();
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) {
          // The limiter failed (and its fallback too): serve rather than refuse.
          req.log?.warn({ err: rejection }, 'SCIM rate limit could not be checked; request served');
          next();
          return;
        }
        const retryAfter = retryAfterSeconds(rejection.msBeforeNext);
        this.metrics?.rateLimited.inc({ limiter: 'scim', client });
        if (rejection.consumedPoints === limiter.points + 1) {
          req.log?.warn(
            { client, limit: perSecond, windowSeconds: SCIM_WINDOW_SECONDS, retryAfter },
            'SCIM rate limit reached for this client (SCIM_RATE_LIMIT); answering 429 until the window ends',
          );
        }
        // Not audited: a flood past the limit must not flood the trail too (scim-http/request-audit.ts).
        res.locals.rateLimited = true;
        next(
          new ScimError(
            429,
            undefined,
            `too many requests with this token: at most ${perSecond} per second (SCIM_RATE_LIMIT, counted over ${SCIM_WINDOW_SECONDS} s); retry after ${retryAfter} s`,
            retryAfter,
          ),
        );
      }
    };
  }

  /** Seconds the address must wait before signing in again, or undefined when it may try. */
  async signinBlocked(address: string | undefined): Promise<number | undefined> {
    const limiter = this.signinLimiter;
    try {
      const res = await limiter.get(address ?? 'unknown');
      if (res && res.consumedPoints >= limiter.points) {
        this.metrics?.rateLimited.inc({ limiter: 'admin_signin', client: '' });
        return retryAfterSeconds(res.msBeforeNext);
      }
    } catch {
      // A limiter that cannot answer does not lock operators out.
    }
    return undefined;
  }

  /** Counts a failed sign-in (or wrong admin bearer) from the address. */
  async signinFailed(address: string | undefined): Promise<void> {
    try {
      await this.signinLimiter.penalty(address ?? 'unknown', 1);
    } catch {
      // As above.
    }
  }

  /** A successful sign-in clears the address's failures. */
  async signinSucceeded(address: string | undefined): Promise<void> {
    try {
      await this.signinLimiter.delete(address ?? 'unknown');
    } catch {
      // As above.
    }
  }

  async close(): Promise<void> {
    this.upstream?.close();
    await this.pool?.end();
  }
}

interface PacerOptions {
  full: RateLimiterAbstract;
  lowered: RateLimiterAbstract;
  cooldownMs: number;
  metrics?: Metrics;
  logger?: Logger;
  now?: () => number;
}

interface Waiter {
  deadlineAt: number;
  /** It found the second's count full at least once. */
  waited?: boolean;
  signal?: AbortSignal;
  resolve(ok: boolean): void;
  reject(err: unknown): void;
}

/**
 * The ceiling toward CloudIdentity: each attempt takes one point of the current second's count.
 * Waiters queue in arrival order and only the head asks the limiter, so a full second costs one
 * refused ask per waiting period, not one per waiter.
 */
export class UpstreamPacer implements CallPacer {
  private readonly queue: Waiter[] = [];
  private pumping = false;
  private loweredUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: PacerOptions) {
    this.now = opts.now ?? Date.now;
    opts.metrics?.upstreamCeiling.set(opts.full.points);
  }

  /** Calls per second allowed right now. */
  get ceiling(): number {
    return this.lowered ? this.opts.lowered.points : this.opts.full.points;
  }

  private get lowered(): boolean {
    return this.now() < this.loweredUntil;
  }

  acquire(deadlineAt: number, signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ deadlineAt, signal, resolve, reject });
      void this.pump();
    });
  }

  throttled(): void {
    const wasLowered = this.lowered;
    this.loweredUntil = this.now() + this.opts.cooldownMs;
    this.opts.metrics?.upstreamCeiling.set(this.opts.lowered.points);
    if (!wasLowered) {
      this.opts.logger?.warn(
        {
          ceiling: this.opts.lowered.points,
          configured: this.opts.full.points,
          cooldownMs: this.opts.cooldownMs,
        },
        'CloudIdentity answered FlowLimitExceeded: sending at most half of VOLCENGINE_MAX_RPS for a while',
      );
    }
  }

  close(): void {
    clearTimeout(this.timer);
    this.wake?.();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const head = this.queue[0];
        if (head.signal?.aborted) {
          this.queue.shift();
          head.reject(head.signal.reason);
          continue;
        }
        if (this.now() >= head.deadlineAt) {
          this.queue.shift();
          head.resolve(false);
          continue;
        }
        const waitMs = await this.take();
        if (waitMs === 0) {
          this.queue.shift();
          if (head.waited) this.opts.metrics?.upstreamPaced.inc();
          head.resolve(true);
          continue;
        }
        // Everyone queued now waits for the next window.
        for (const waiter of this.queue) waiter.waited = true;
        // The head sleeps until the next window, or its deadline, or its abort.
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(this.timer);
            head.signal?.removeEventListener('abort', done);
            this.wake = undefined;
            resolve();
          };
          this.wake = done;
          this.timer = setTimeout(done, Math.max(1, Math.min(waitMs, head.deadlineAt - this.now())));
          head.signal?.addEventListener('abort', done, { once: true });
        });
      }
    } finally {
      this.pumping = false;
    }
  }

  /** 0 when a point was taken, else the milliseconds until the count may allow one. */
  private async take(): Promise<number> {
    if (!this.lowered && this.loweredUntil !== 0) {
      this.loweredUntil = 0;
      this.opts.metrics?.upstreamCeiling.set(this.opts.full.points);
      this.opts.logger?.info(
        { ceiling: this.opts.full.points },
        'CloudIdentity rate ceiling restored to VOLCENGINE_MAX_RPS',
      );
    }
    const limiter = this.lowered ? this.opts.lowered : this.opts.full;
    try {
      await limiter.consume('cloudidentity');
      return 0;
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return Math.max(1, rejection.msBeforeNext);
      // The limiter failed (and its fallback too): send rather than stall every call.
      return 0;
    }
  }
}
