import type { Logger } from 'pino';
import type { AuditStore } from '../store/audit-types.js';

// AUDIT_RETENTION_DAYS: records older than that are deleted in the background, in batches of
// PRUNE_BATCH (each its own short statement) with a pause between, so a backlog (the first start
// after lowering the setting) never holds the store for long. Runs every PRUNE_INTERVAL_MS; any
// replica may run it (deleting the same old rows twice is harmless).

export const PRUNE_BATCH = 1_000;
export const PRUNE_INTERVAL_MS = 10 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface AuditRetentionOptions {
  store: AuditStore;
  retentionDays: number;
  logger: Logger;
  intervalMs?: number;
  batch?: number;
  /** Pause between batches (yields the store to requests). */
  pauseMs?: number;
  now?: () => number;
}

export class AuditRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private started = false;
  private stopped = false;

  constructor(private readonly options: AuditRetentionOptions) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopped = false;
    const tick = () => {
      void this.pruneNow().finally(() => {
        if (!this.stopped)
          this.timer = setTimeout(tick, this.options.intervalMs ?? PRUNE_INTERVAL_MS).unref();
      });
    };
    // First run soon after start, not during it.
    this.timer = setTimeout(tick, 1_000).unref();
  }

  /** Stops the timer and waits for a running prune to finish its current batch. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.started = false;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One pass: batches until nothing older than the retention remains (or stop). Returns rows deleted. */
  pruneNow(): Promise<number> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<number> {
    const { store, logger } = this.options;
    const batch = this.options.batch ?? PRUNE_BATCH;
    const now = this.options.now ?? Date.now;
    const before = new Date(now() - this.options.retentionDays * DAY_MS).toISOString();
    let total = 0;
    try {
      for (;;) {
        const n = await store.pruneAudit(before, batch);
        total += n;
        if (n < batch || this.stopped) break;
        await new Promise((resolve) => setTimeout(resolve, this.options.pauseMs ?? 50));
      }
    } catch (err) {
      logger.warn(
        { err, deleted: total },
        'audit retention: pruning failed; will retry at the next interval',
      );
      return total;
    }
    if (total > 0) logger.info({ deleted: total, before }, 'audit retention: old records pruned');
    return total;
  }
}
