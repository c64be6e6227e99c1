import type { Logger } from 'pino';
import type { PublishedLeaderStatus } from '../store/leader-status.js';
import type { BridgeStore } from '../store/types.js';
import type { ReconcilerReport, RunResult } from './reconciler.js';

// The reconciler leader's status, published to the store after each of its runs so that every
// replica can show it (a replica that does not lead has no run of its own to report). What is
// published is the leader's report in the same shape as GET /admin/api/reconciler, with its lists
// cut to what the console shows, and the outcome of the run it follows.

const ROLE = 'reconciler';
/** Intents and drift findings the published status lists (the counts are complete). */
const PUBLISHED_LIST = 10;

export interface LeaderRun {
  /** 'ok', or 'failures' when an intent could not be settled in the run. */
  outcome: 'ok' | 'failures';
  settled: number;
  failed: number;
  skippedBusy: number;
  driftFindings: number;
}

/** The published status: the leader's report and its last run. */
export type PublishedReconcilerStatus = Omit<ReconcilerReport, 'leader'> & {
  leader: string;
  lastRun: LeaderRun;
};

export class ReconcilerStatus {
  constructor(
    private readonly o: { store: BridgeStore; replica: string; intervalMs: number; logger: Logger },
  ) {}

  /** Called by the leader when a run ends; a failure to publish is logged, never fatal to the run. */
  async publish(report: ReconcilerReport, result: RunResult): Promise<void> {
    const status: PublishedReconcilerStatus = {
      ...report,
      leader: this.o.replica,
      // The loop schedules its next run once this one has returned.
      nextRunAt: this.o.intervalMs > 0 ? new Date(Date.now() + this.o.intervalMs).toISOString() : null,
      intents: report.intents.slice(0, PUBLISHED_LIST),
      drift: { ...report.drift, reported: report.drift.reported.slice(0, PUBLISHED_LIST) },
      lastRun: {
        outcome: result.failed > 0 ? 'failures' : 'ok',
        settled: result.settled,
        failed: result.failed,
        skippedBusy: result.skippedBusy,
        driftFindings: result.drift.length,
      },
    };
    try {
      await this.o.store.publishLeaderStatus(ROLE, this.o.replica, status);
    } catch (err) {
      this.o.logger.warn({ err }, 'reconciler status not published; the next run tries again');
    }
  }

  /** The leader's last published status, or null when no leader has published one. */
  read(): Promise<PublishedLeaderStatus | null> {
    return this.o.store.leaderStatus(ROLE);
  }
}
