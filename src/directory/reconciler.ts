// The reconciler (README "Consistency"): a background loop that settles every pending intent (a multi-step
// operation a request or a crash left half-done) and, on a slower cadence, looks for drift the bridge
// did not cause (drift.ts).
//
// - One leader among replicas: PostgreSQL pg_try_advisory_lock on a connection held while leading
//   (BridgeStore.tryLeadership), with a lease: a leader that is frozen or cut off from PostgreSQL
//   loses the lock within STORE_LOCK_LEASE_MS, and one that notices it cannot reach its session stops
//   leading (checked before every resource it settles, and again right before each commit, so a
//   leader whose lease ran out mid-settle commits nothing). Two bridges may both settle for a moment
//   around a hand-over; each settle runs under the resource's lock, so they never race on one
//   resource. The embedded store has one bridge, which always leads.
// - Bounded rate: at most `batch` intents per tick; each under the same resource lock requests take
//   (resource-locks.ts), so it never races a request; a resource busy with a request is skipped (that
//   request settles the intent itself before its own work).
// - Backoff per intent: 1 s · 2^attempts, capped at `backoffMaxMs`. Once CloudIdentity is healthy,
//   every intent is due again within the cap and picked up at the next tick: settled within
//   backoffMaxMs + intervalMs (+ the settle itself) — 35 s with the defaults, ≤ 55 s by config
//   validation, for up to `batch` intents due at once (each further batch adds one interval). With
//   the leader frozen or cut off, another replica leads within the lock lease + intervalMs (20 s
//   with the defaults), inside the same bound while the lease is not longer than the backoff cap.
// - Reconcile now (runNow, the console's button): one tick with every intent taken and a drift pass,
//   on the replica that leads (or can take the lead); refused, never queued, while a tick runs here,
//   while another replica leads, or within `manualMinIntervalMs` of the previous one.
import type { Logger } from 'pino';
import { backgroundStatus } from '../audit/entry.js';
import type { BridgeStore, IntentRecord } from '../store/types.js';
import { newCallLog } from '../volcengine/call-log.js';
import type { CloudIdentityApi } from '../volcengine/types.js';
import type { RequestContext } from './context.js';
import type { DriftChecker, DriftCursor, DriftFinding } from './drift.js';
import { DirectoryUnavailableError, ResourceBusyError } from './errors.js';
import { describe, type Intents } from './intents.js';
import { type ResourceLocks, withResource } from './resource-locks.js';
import type { UnmanagedStep } from './unmanaged.js';

/**
 * What the reconciler reports while it runs: the four reconciler series of the bridge's Prometheus
 * metrics (ops/metrics.ts), which the bridge passes in; the domain only sees this shape.
 */
export interface ReconcilerMetrics {
  reconcilerPending: { set(value: number): void };
  reconcilerActions: { inc(labels: { kind: string; outcome: string }): void };
  reconcilerDrift: { inc(labels: { kind: string; action: string }): void };
  reconcilerLeader: { set(value: number): void };
}

export interface ReconcilerOptions {
  store: BridgeStore;
  api: CloudIdentityApi;
  locks: ResourceLocks;
  intents: Intents;
  drift: DriftChecker;
  logger: Logger;
  metrics?: ReconcilerMetrics;
  /** 0: no loop (runOnce only). */
  intervalMs: number;
  batch: number;
  backoffMaxMs: number;
  /** 0: no drift checks in the loop. */
  driftIntervalMs: number;
  driftBudget: number;
  /** Deadline of one settle attempt (the request deadline). */
  attemptDeadlineMs: number;
  /** Least time between two runNow; default 15 s. */
  manualMinIntervalMs?: number;
  /** Called when a run this bridge led ends (reconciler-status.ts publishes it for other replicas). */
  onRun?: (report: ReconcilerReport, result: RunResult) => Promise<void>;
}

export interface ReconcilerReport {
  leader: boolean;
  lastRunAt: string | null;
  lastRunMs: number | null;
  nextRunAt: string | null;
  pendingIntents: number;
  intents: Array<{
    id: string;
    kind: string;
    resource: string;
    attempts: number;
    lastError: string | null;
    createdAt: string;
    nextAttemptAt: string;
  }>;
  drift: {
    found: number;
    repaired: number;
    reported: Array<{ kind: string; resource: string; detail: string; at: string }>;
    lastCheckAt: string | null;
  };
  totals: { ticks: number; settled: number; failed: number; skippedBusy: number };
}

export interface RunOptions {
  /** Take every intent, due or not (tests: after clearing a fault, without waiting for backoff). */
  ignoreBackoff?: boolean;
  /** Run a drift pass in this tick. */
  drift?: boolean;
}

/** What one tick did. */
export interface RunResult {
  settled: number;
  failed: number;
  skippedBusy: number;
  pending: number;
  drift: DriftFinding[];
  /** The drift pass's walk for accounts no SCIM resource maps; null without a drift pass or when it failed. */
  unmanaged: UnmanagedStep | null;
}

/** What runNow did: the tick's result, or why it did not run (nothing was started then). */
export type ManualRun =
  | { ran: true; startedAt: string; finishedAt: string; result: RunResult }
  | {
      ran: false;
      reason: 'running' | 'notLeader' | 'tooSoon';
      detail: string;
      /** tooSoon: seconds until runNow is accepted again. */
      retryAfterSeconds?: number;
    };

/** The actor of every record the reconciler writes (its settles and drift repairs). */
export const RECONCILER_ACTOR = 'reconciler';
const BACKOFF_BASE_MS = 1_000;
/** Later than any next attempt (ISO text sorts like time only within four-digit years). */
const FAR_FUTURE = '9999-12-31T23:59:59.999Z';
/** How long the reconciler waits for a resource a request holds before moving on. */
const LOCK_WAIT_MS = 2_000;
/** Intents and drift findings the report lists (the counts are complete). */
const REPORT_LIMIT = 100;
const MANUAL_MIN_INTERVAL_MS = 15_000;

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = true;
  private leadership: { lost(): boolean; release(): Promise<void> } | null = null;
  private readonly embeddedLeader: boolean;
  private lastRunAt: Date | null = null;
  private lastRunMs: number | null = null;
  private nextRunAt: Date | null = null;
  private lastDriftAt = 0;
  private lastDriftCheckAt: Date | null = null;
  private pending: IntentRecord[] = [];
  private pendingCount = 0;
  private readonly driftCursor: DriftCursor = { userOffset: 0, groupAfter: '' };
  private readonly reported: Array<DriftFinding & { at: string }> = [];
  private readonly totals = { ticks: 0, settled: 0, failed: 0, skippedBusy: 0 };
  private driftFound = 0;
  private driftRepaired = 0;
  /** A tick is running (or a runNow is about to start one). */
  private busy = false;
  private lastManualAt = 0;
  /** Aborted by stop(): the walk's CloudIdentity reads do not hold a shutdown up. */
  private walkAbort = new AbortController();

  constructor(private readonly o: ReconcilerOptions) {
    this.embeddedLeader = !o.store.tryLeadership;
    o.intents.observe((intent, outcome, err) => {
      o.metrics?.reconcilerActions.inc({ kind: intent.kind, outcome });
      if (outcome === 'completed') {
        o.logger.info({ intent: intent.id, kind: intent.kind, resource: intent.resource }, 'intent settled');
      } else {
        o.logger.warn(
          { intent: intent.id, kind: intent.kind, resource: intent.resource, error: describe(err) },
          'intent not settled yet; retried with backoff',
        );
      }
    });
  }

  /** Starts the loop (no-op when intervalMs is 0). */
  start(): void {
    if (this.o.intervalMs <= 0 || !this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops the loop, waits for a tick in progress, gives up leadership. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.nextRunAt = null;
    this.walkAbort.abort();
    await this.running?.catch(() => undefined);
    this.walkAbort = new AbortController();
    await this.resign();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.nextRunAt = new Date(Date.now() + delayMs);
    this.timer = setTimeout(() => {
      const drift = this.o.driftIntervalMs > 0 && Date.now() - this.lastDriftAt >= this.o.driftIntervalMs;
      this.runOnce({ drift })
        .catch((err) => this.o.logger.warn({ err }, 'reconciler tick failed'))
        .finally(() => this.schedule(this.o.intervalMs));
    }, delayMs);
    this.timer.unref();
  }

  /** Whether this bridge leads now (taking leadership if free). */
  async lead(): Promise<boolean> {
    if (this.embeddedLeader) return true;
    if (this.leadership?.lost()) {
      this.o.logger.warn('reconciler leadership lost with its connection');
      await this.resign();
    }
    if (!this.leadership) {
      this.leadership = await this.o.store.tryLeadership!('reconciler');
      if (this.leadership) this.o.logger.info('this bridge now leads the reconciler');
    }
    return this.leadership !== null;
  }

  /** Leads still (without asking the store): the lease has not been lost since the tick began. */
  private leading(): boolean {
    return this.embeddedLeader || (this.leadership !== null && !this.leadership.lost());
  }

  private async resign(): Promise<void> {
    const held = this.leadership;
    this.leadership = null;
    this.o.metrics?.reconcilerLeader.set(this.embeddedLeader && !this.stopped ? 1 : 0);
    await held?.release().catch(() => undefined);
  }

  /** One tick: settle up to `batch` due intents (and a drift pass when asked). Serialised. */
  runOnce(options: RunOptions = {}): Promise<RunResult> {
    return this.serialized(async () => (await this.tick(options)).result);
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.running ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(fn);
    this.running = run;
    return run;
  }

  /**
   * Reconcile now: every pending intent (backoff ignored) and a drift pass, at once, when this
   * bridge leads or can take the lead. Never two ticks at once, never a second pass beside the
   * leader's: it answers why it did not run instead.
   */
  async runNow(): Promise<ManualRun> {
    if (this.busy)
      return {
        ran: false,
        reason: 'running',
        detail:
          'a reconciler pass is running on this replica; its result shows in the reconciler report when it ends',
      };
    const minInterval = this.o.manualMinIntervalMs ?? MANUAL_MIN_INTERVAL_MS;
    const wait = this.lastManualAt + minInterval - Date.now();
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      return {
        ran: false,
        reason: 'tooSoon',
        detail: `the previous Reconcile now ran less than ${Math.ceil(minInterval / 1000)} s ago; try again in ${seconds} s`,
        retryAfterSeconds: seconds,
      };
    }
    // Set before the first await: a second click meanwhile is answered `running`.
    this.busy = true;
    const startedAt = new Date().toISOString();
    const outcome = await this.serialized(() => this.tick({ ignoreBackoff: true, drift: true }));
    if (!outcome.leader)
      return {
        ran: false,
        reason: 'notLeader',
        detail: `another replica leads the reconciler and runs its passes (every ${Math.round(this.o.intervalMs / 1000)} s, drift every ${Math.round(this.o.driftIntervalMs / 1000)} s); this one cannot take the lead while that one holds it`,
      };
    this.lastManualAt = Date.now();
    return { ran: true, startedAt, finishedAt: new Date().toISOString(), result: outcome.result };
  }

  private async tick(options: RunOptions): Promise<{ leader: boolean; result: RunResult }> {
    this.busy = true;
    try {
      return await this.tickLed(options);
    } finally {
      this.busy = false;
    }
  }

  private async tickLed(options: RunOptions): Promise<{ leader: boolean; result: RunResult }> {
    const started = Date.now();
    const result: RunResult = {
      settled: 0,
      failed: 0,
      skippedBusy: 0,
      pending: 0,
      drift: [],
      unmanaged: null,
    };
    const leader = await this.lead();
    this.o.metrics?.reconcilerLeader.set(leader ? 1 : 0);
    if (!leader) return { leader, result };
    const now = options.ignoreBackoff ? new Date(FAR_FUTURE) : new Date();
    const due = await this.o.store.dueIntents(now, this.o.batch);
    // One settle per resource: it takes that resource's intents in order, oldest first.
    const resources = [...new Set(due.map((i) => i.resource))];
    for (const resource of resources) {
      if (!this.leading()) break;
      try {
        await withResource(this.o.locks, this.o.store, resource, Date.now() + LOCK_WAIT_MS, () =>
          this.o.intents.settle(resource, this.context(), (i) => this.nextAttempt(i)),
        );
        result.settled += due.filter((i) => i.resource === resource).length;
      } catch (err) {
        if (err instanceof ResourceBusyError) {
          result.skippedBusy++;
          continue;
        }
        result.failed++;
      }
    }
    if (options.drift && this.leading()) {
      result.drift = await this.driftPass(this.context());
      if (this.leading()) result.unmanaged = await this.walkUpstream(this.context());
    }
    await this.refresh();
    result.pending = this.pendingCount;
    this.totals.ticks++;
    this.totals.settled += result.settled;
    this.totals.failed += result.failed;
    this.totals.skippedBusy += result.skippedBusy;
    this.lastRunAt = new Date(started);
    this.lastRunMs = Date.now() - started;
    await this.o.onRun?.(this.report(), result);
    return { leader, result };
  }

  /** The drift pass's walk for accounts no SCIM resource maps; a failure is logged, and it goes on next pass. */
  private async walkUpstream(ctx: RequestContext): Promise<UnmanagedStep | null> {
    try {
      const step = await this.o.drift.walkUpstream(this.o.driftBudget, ctx, this.walkAbort.signal);
      if (step.sweepFinished)
        this.o.logger.info(
          { sweep: step.sweep },
          'drift: a walk of every CloudIdentity user and group ended',
        );
      return step;
    } catch (err) {
      if (this.walkAbort.signal.aborted)
        this.o.logger.info(
          'drift: the walk for unmanaged accounts stopped for shutdown; its progress is kept',
        );
      else
        this.o.logger.warn(
          { err },
          'drift: the walk for unmanaged accounts stopped early; it goes on at the next pass',
        );
      return null;
    }
  }

  private async driftPass(ctx: RequestContext): Promise<DriftFinding[]> {
    this.lastDriftAt = Date.now();
    let findings: DriftFinding[] = [];
    try {
      findings = await this.o.drift.pass(this.driftCursor, this.o.driftBudget, ctx);
    } catch (err) {
      this.o.logger.warn({ err }, 'drift check stopped early; it goes on at the next pass');
    }
    this.lastDriftCheckAt = new Date();
    for (const f of findings) {
      this.driftFound++;
      if (f.action === 'repaired') this.driftRepaired++;
      this.o.metrics?.reconcilerDrift.inc({ kind: f.kind, action: f.action });
      this.o.logger.warn({ drift: f.kind, resource: f.resource, action: f.action }, `drift: ${f.detail}`);
      this.reported.unshift({ ...f, at: new Date().toISOString() });
    }
    this.reported.splice(REPORT_LIMIT);
    return findings;
  }

  private nextAttempt(intent: IntentRecord): Date {
    const delay = Math.min(this.o.backoffMaxMs, BACKOFF_BASE_MS * 2 ** Math.min(intent.attempts, 20));
    return new Date(Date.now() + delay);
  }

  /**
   * A fresh context (and call log) per piece of work; the reconciler's own actions are recorded in
   * the trail with actor `reconciler`.
   */
  private context(): RequestContext {
    const startedAt = Date.now();
    const upstream = newCallLog();
    return {
      deadlineAt: startedAt + this.o.attemptDeadlineMs,
      log: this.o.logger,
      upstream,
      origin: {
        actor: RECONCILER_ACTOR,
        clientIp: null,
        requestId: null,
        method: 'reconcile',
        startedAt,
        upstreamCalls: () => upstream.calls,
        statusOf: backgroundStatus,
      },
      // A leader whose lease ran out mid-settle (frozen, cut off) commits nothing: the replica
      // that leads now settles that intent under the resource's lock.
      fence: () => {
        if (!this.leading())
          throw new DirectoryUnavailableError('the reconciler lost its lead; another replica settles this');
      },
    };
  }

  /** Re-reads the pending intents for the report and the gauge. */
  async refresh(): Promise<void> {
    this.pendingCount = await this.o.store.countIntents();
    this.pending = await this.o.store.dueIntents(new Date(FAR_FUTURE), REPORT_LIMIT);
    this.o.metrics?.reconcilerPending.set(this.pendingCount);
  }

  report(): ReconcilerReport {
    return {
      leader: this.leading(),
      lastRunAt: this.lastRunAt?.toISOString() ?? null,
      lastRunMs: this.lastRunMs,
      nextRunAt: this.nextRunAt?.toISOString() ?? null,
      pendingIntents: this.pendingCount,
      intents: this.pending.map((i) => ({
        id: i.id,
        kind: i.kind,
        resource: i.resource,
        attempts: i.attempts,
        lastError: i.lastError,
        createdAt: i.createdAt,
        nextAttemptAt: i.nextAttemptAt,
      })),
      drift: {
        found: this.driftFound,
        repaired: this.driftRepaired,
        reported: this.reported.map(({ kind, resource, detail, at }) => ({ kind, resource, detail, at })),
        lastCheckAt: this.lastDriftCheckAt?.toISOString() ?? null,
      },
      totals: { ...this.totals },
    };
  }
}
