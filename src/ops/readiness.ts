import type { Logger } from 'pino';
import { StoreUnavailableError } from '../store/errors.js';
import { TimeoutError, withTimeout } from '../store/timeout.js';
import type { BridgeStore } from '../store/types.js';
import { isCredentialProblem, VolcengineApiError, VolcengineTransportError } from '../volcengine/errors.js';
import type { CloudIdentityApi } from '../volcengine/types.js';
import { PERMISSION_CODES, type UpstreamActivity } from './upstream-activity.js';

// Readiness: the store answers and can write, and CloudIdentity accepts the bridge's credentials.
// A store whose last write failed for want of the store (full disk, connection lost) is not ready
// until a write commits again: the check then makes a tiny real write (the store's heartbeat), so
// readiness recovers by itself once the store can write. The result is
// cached (READINESS_CACHE_MS) and concurrent probes share one check, so a probe every second from
// every kubelet and load balancer costs at most one upstream call per cache period. Once shutdown
// starts the answer is 503 at once, without any check.
//
// A started bridge also checks in the background (start()), so the `scim_bridge_ready` gauge is
// current without anyone probing, and so that liveness can say when the store has not answered for
// LIVENESS_STORE_TIMEOUT_MS: such a process serves nothing (every SCIM route needs the store), and
// a restart is what clears connections stuck on a network path that silently dropped them.
//
// CloudIdentity is asked (ListUsers, one user) only when the bridge's own calls have not shown it
// usable within the cache period (UpstreamActivity): a busy replica makes no calls of readiness's
// own, an idle one one per period. Either way a report states CloudIdentity as it was known at most
// cacheMs before (a report resting on a call expires cacheMs after that call), so an outage or
// revoked credentials show as soon as they would with a check of its own every period.

export interface CheckResult {
  status: 'ok' | 'failed';
  durationMs: number;
  /** Short, secret-free explanation (error code or kind, never a connection string). */
  detail?: string;
}

export interface ReadinessReport {
  status: 'ready' | 'not_ready' | 'shutting_down';
  /** Why the bridge is not ready; absent when ready. */
  reason?: string;
  checks?: { store: CheckResult; upstream: CheckResult };
  /** When the checks ran (RFC 3339); cached reports keep their original time. */
  checkedAt: string;
}

export interface UpstreamVerdict {
  ok: boolean;
  detail: string;
  code?: string;
  requestId?: string;
}

/**
 * Whether an answer to a signed call proves the credentials are usable. Credential and permission
 * errors do not; an unreachable service proves nothing (not ready); other upstream errors such as
 * throttling or a 5xx mean the request was authenticated and the credentials are fine.
 */
export function judgeUpstreamFailure(err: unknown): UpstreamVerdict {
  if (err instanceof VolcengineApiError) {
    const base = { code: err.code, requestId: err.requestId };
    if (isCredentialProblem(err))
      return { ok: false, detail: `CloudIdentity rejected the bridge credentials (${err.code})`, ...base };
    if (PERMISSION_CODES.has(err.code))
      return {
        ok: false,
        detail: `the bridge credentials lack permission for ${err.action} (${err.code})`,
        ...base,
      };
    return {
      ok: true,
      detail: `CloudIdentity answered ${err.code}; credentials were not rejected`,
      ...base,
    };
  }
  if (err instanceof VolcengineTransportError)
    return { ok: false, detail: `CloudIdentity unreachable (${err.kind})`, requestId: err.requestId };
  return { ok: false, detail: 'CloudIdentity check failed' };
}

export interface ReadinessOptions {
  store: Pick<BridgeStore, 'ping'> & Partial<Pick<BridgeStore, 'writeFailureReason' | 'heartbeat'>>;
  api: Pick<CloudIdentityApi, 'listUsers'>;
  /** The bridge's own calls to CloudIdentity; without it, every check asks CloudIdentity itself. */
  upstreamActivity?: Pick<UpstreamActivity, 'usableSince'>;
  /** How long a result is reused. 0 = check on every probe. */
  cacheMs: number;
  /** Bound for each check. Default 5 s. */
  timeoutMs?: number;
  logger?: Logger;
  /** Called with every fresh result (e.g. to set a gauge). */
  onResult?(ready: boolean): void;
  /** liveness() fails once store checks have failed for this long without a success; 0/unset: never. */
  livenessStoreTimeoutMs?: number;
  now?: () => number;
}

export interface LivenessReport {
  status: 'ok' | 'store_unreachable';
  reason?: string;
}

export class Readiness {
  private cached: { report: ReadinessReport; expiresAt: number; writeFailing: boolean } | undefined;
  private running: Promise<ReadinessReport> | undefined;
  private stopping = false;
  private lastReady: boolean | undefined;
  /** When store checks started failing (cleared by a success); undefined while it answers. */
  private storeFailingSince: number | undefined;
  private lastStoreDetail: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly timeoutMs: number;

  constructor(private readonly options: ReadinessOptions) {
    this.now = options.now ?? Date.now;
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  get shuttingDown(): boolean {
    return this.stopping;
  }

  /** From now on every probe answers 503 shutting_down. */
  markShuttingDown(): void {
    this.stop();
    if (this.stopping) return;
    this.stopping = true;
    this.options.onResult?.(false);
  }

  /**
   * Checks in the background every `periodMs` (default: the cache period, at least 1 s), so the
   * gauge and liveness follow the store and CloudIdentity without probes. A cached result is reused,
   * so probes and the loop together still cost one check per cache period.
   */
  start(periodMs = Math.max(this.options.cacheMs, 1_000)): void {
    if (this.timer || this.stopping) return;
    const tick = () => {
      this.check()
        .catch((err) => this.options.logger?.warn({ err }, 'background readiness check failed'))
        .finally(() => {
          if (!this.timer) return;
          this.timer = setTimeout(tick, periodMs);
          this.timer.unref();
        });
    };
    this.timer = setTimeout(tick, 0);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Liveness: fails once the store has failed every check for longer than livenessStoreTimeoutMs.
   * Reads what checks found (never runs one), so it stays cheap and answers even while the store hangs.
   */
  liveness(): LivenessReport {
    const limit = this.options.livenessStoreTimeoutMs ?? 0;
    const since = this.storeFailingSince;
    if (limit <= 0 || since === undefined || this.stopping) return { status: 'ok' };
    const failingMs = this.now() - since;
    if (failingMs <= limit) return { status: 'ok' };
    return {
      status: 'store_unreachable',
      reason: `the store has not answered for ${Math.round(failingMs / 1000)} s (${this.lastStoreDetail ?? 'store unreachable'})`,
    };
  }

  async check(): Promise<ReadinessReport> {
    if (this.stopping) return this.shutdownReport();
    const cached = this.cached;
    // A cached report does not outlive a change of the store's write health (a write failed, or one
    // committed since).
    if (cached && this.now() < cached.expiresAt && cached.writeFailing === (this.writeFailure() !== null))
      return cached.report;
    if (!this.running) {
      this.running = this.run().finally(() => {
        this.running = undefined;
      });
    }
    const report = await this.running;
    return this.stopping ? this.shutdownReport() : report;
  }

  private shutdownReport(): ReadinessReport {
    return {
      status: 'shutting_down',
      reason: 'the bridge is shutting down',
      checkedAt: new Date(this.now()).toISOString(),
    };
  }

  private async run(): Promise<ReadinessReport> {
    const started = this.now();
    const [store, { result: upstream, knownAt }] = await Promise.all([
      this.checkStore(),
      this.checkUpstream(),
    ]);
    if (store.status === 'ok') this.storeFailingSince = undefined;
    else {
      this.storeFailingSince ??= started;
      this.lastStoreDetail = store.detail;
    }
    const problems = [store, upstream].filter((c) => c.status === 'failed');
    const report: ReadinessReport = {
      status: problems.length ? 'not_ready' : 'ready',
      ...(problems.length
        ? {
            reason: [
              store.status === 'failed' ? store.detail : undefined,
              upstream.status === 'failed' ? upstream.detail : undefined,
            ]
              .filter(Boolean)
              .join('; '),
          }
        : {}),
      checks: { store, upstream },
      checkedAt: new Date(started).toISOString(),
    };
    this.cached = {
      report,
      expiresAt: (knownAt ?? this.now()) + this.options.cacheMs,
      writeFailing: this.writeFailure() !== null,
    };
    const ready = report.status === 'ready';
    if (ready !== this.lastReady) {
      if (ready) this.options.logger?.info('ready: store and CloudIdentity checks pass');
      else this.options.logger?.warn({ reason: report.reason }, 'not ready');
      this.lastReady = ready;
    }
    this.options.onResult?.(ready);
    return report;
  }

  /** Why the store's last write failed, or null (also for stores that do not tell). */
  private writeFailure(): string | null {
    const reason = this.options.store.writeFailureReason?.();
    return typeof reason === 'string' ? reason : null;
  }

  private async checkStore(): Promise<CheckResult> {
    const started = this.now();
    try {
      await withTimeout(this.options.store.ping(), this.timeoutMs, 'store ping timed out');
      if (this.writeFailure() !== null && this.options.store.heartbeat) {
        try {
          await withTimeout(
            this.options.store.heartbeat(),
            this.timeoutMs,
            'store heartbeat write timed out',
          );
        } catch (err) {
          this.options.logger?.debug({ err }, 'readiness: store heartbeat write failed');
          const reason = err instanceof StoreUnavailableError ? err.reason : this.writeFailure();
          const suffix = typeof reason === 'string' && /^[\w.: -]{1,80}$/.test(reason) ? ` (${reason})` : '';
          return {
            status: 'failed',
            durationMs: this.now() - started,
            detail: err instanceof TimeoutError ? err.message : `store cannot write${suffix}`,
          };
        }
      }
      return { status: 'ok', durationMs: this.now() - started };
    } catch (err) {
      this.options.logger?.debug({ err }, 'readiness: store ping failed');
      // StoreUnavailableError carries a secret-free reason ("PostgreSQL: ECONNREFUSED", "SQLite SQLITE_IOERR").
      const code = err instanceof StoreUnavailableError ? err.reason : (err as { code?: unknown })?.code;
      const suffix = typeof code === 'string' && /^[\w.: -]{1,80}$/.test(code) ? ` (${code})` : '';
      return {
        status: 'failed',
        durationMs: this.now() - started,
        detail: err instanceof TimeoutError ? err.message : `store unreachable${suffix}`,
      };
    }
  }

  /** The upstream check; `knownAt`: when what it states was known, when that was a call of the bridge's. */
  private async checkUpstream(): Promise<{ result: CheckResult; knownAt?: number }> {
    const started = this.now();
    const usableSince = this.options.upstreamActivity?.usableSince();
    if (usableSince !== undefined && started - usableSince < this.options.cacheMs) {
      const ago = Math.max(0, started - usableSince);
      return {
        result: {
          status: 'ok',
          durationMs: 0,
          detail: `CloudIdentity accepted the bridge's calls ${ago} ms ago`,
        },
        knownAt: usableSince,
      };
    }
    return { result: await this.askUpstream() };
  }

  private async askUpstream(): Promise<CheckResult> {
    const started = this.now();
    try {
      await this.options.api.listUsers(
        { PageNumber: 1, PageSize: 1 },
        { deadlineAt: Date.now() + this.timeoutMs },
      );
      return { status: 'ok', durationMs: this.now() - started };
    } catch (err) {
      const verdict = judgeUpstreamFailure(err);
      if (!verdict.ok) this.options.logger?.debug({ err }, 'readiness: CloudIdentity check failed');
      return {
        status: verdict.ok ? 'ok' : 'failed',
        durationMs: this.now() - started,
        detail: verdict.detail,
      };
    }
  }
}
