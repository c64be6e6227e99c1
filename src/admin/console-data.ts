import type { Router } from 'express';
import type { ReplicaIdentity } from '../directory/replica.js';
import type { Readiness } from '../ops/readiness.js';
import type { BridgeStore } from '../store/types.js';
import { handle } from './audit-routes.js';
import { intParam, queryParams } from './params.js';

// The console's data, under /admin/api (same authentication as every admin route, so scripts can
// read it too): GET overview (health, counts, per-actor activity, which replica answered and
// whether CloudIdentity is the in-process emulator), GET activity (the last hours per minute:
// operations by outcome and p95 latency, from the audit trail). People and groups: people-routes.ts.

/** At most this many audit rows feed the activity chart; past it the chart says it is sampled. */
export const ACTIVITY_ROWS = 50_000;

/**
 * One activity answer serves every request for the same window for this long (and requests that
 * arrive while it is computed wait for it): reading up to ACTIVITY_ROWS records is the console's
 * heaviest read, and twenty consoles opening at once must not run it twenty times.
 */
export const ACTIVITY_REUSE_MS = 10_000;

export interface ActivityBucket {
  /** Start of the minute, RFC 3339 UTC. */
  at: string;
  ok: number;
  error: number;
  p95Ms: number;
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

export function bucketActivity(
  rows: Array<{ at: string; status: number; durationMs: number }>,
): ActivityBucket[] {
  const byMinute = new Map<string, { ok: number; error: number; durations: number[] }>();
  for (const row of rows) {
    const minute = `${row.at.slice(0, 16)}:00.000Z`;
    let b = byMinute.get(minute);
    if (!b) {
      b = { ok: 0, error: 0, durations: [] };
      byMinute.set(minute, b);
    }
    if (row.status >= 400) b.error += 1;
    else b.ok += 1;
    b.durations.push(row.durationMs);
  }
  return [...byMinute.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([at, b]) => ({
      at,
      ok: b.ok,
      error: b.error,
      p95Ms: percentile(
        b.durations.sort((x, y) => x - y),
        95,
      ),
    }));
}

export interface ConsoleDataDeps {
  store: BridgeStore;
  readiness: Readiness;
  retentionDays: number;
  /** The replica answering (shown as "served by"). */
  replica: ReplicaIdentity;
  /** What CloudIdentity the bridge writes to: the console warns when it is the in-process emulator. */
  upstream: { emulator: boolean; region: string; endpoint: string | null };
}

export interface Activity {
  from: string;
  to: string;
  bucketSeconds: number;
  operations: number;
  truncated: boolean;
  buckets: ActivityBucket[];
}

export function consoleDataRoutes(deps: ConsoleDataDeps) {
  const { store, readiness } = deps;
  const activityByHours = new Map<number, { until: number; answer: Promise<Activity> }>();
  const activity = (hours: number): Promise<Activity> => {
    const now = Date.now();
    const reused = activityByHours.get(hours);
    if (reused && reused.until > now) return reused.answer;
    const answer = (async () => {
      const to = new Date();
      const from = new Date(to.getTime() - hours * 3_600_000);
      const rows = await store.auditActivity(from.toISOString(), ACTIVITY_ROWS);
      return {
        from: from.toISOString(),
        to: to.toISOString(),
        bucketSeconds: 60,
        operations: rows.length,
        truncated: rows.length >= ACTIVITY_ROWS,
        buckets: bucketActivity(rows),
      };
    })();
    activityByHours.set(hours, { until: now + ACTIVITY_REUSE_MS, answer });
    // A failure is not reused.
    answer.catch(() => {
      if (activityByHours.get(hours)?.answer === answer) activityByHours.delete(hours);
    });
    return answer;
  };
  return (router: Router) => {
    router.get(
      '/overview',
      handle(async (req, res) => {
        queryParams(req, []);
        const [health, counts, actors] = await Promise.all([
          readiness.check(),
          store.directoryCounts(),
          store.auditActors(50),
        ]);
        res.json({
          now: new Date().toISOString(),
          health,
          counts,
          actors,
          auditRetentionDays: deps.retentionDays,
          replica: deps.replica,
          upstream: deps.upstream,
        });
      }),
    );

    router.get(
      '/activity',
      handle(async (req, res) => {
        const p = queryParams(req, ['hours']);
        const hours = intParam('hours', p.hours, 24, 1, 168);
        res.json(await activity(hours));
      }),
    );
  };
}
