import type { Router } from 'express';
import type { ReplicaIdentity } from '../directory/replica.js';
import type { Readiness } from '../ops/readiness.js';
import { LATENCY_CLASS_MS } from '../store/audit-sql.js';
import type { AuditTallyRow } from '../store/audit-types.js';
import type { BridgeStore } from '../store/types.js';
import { handle } from './audit-routes.js';
import { enumParam, queryParams } from './params.js';

// The console's data, under /admin/api (same authentication as every admin route, so scripts can
// read it too): GET overview (health, counts, per-actor totals, which replica answered and whether
// CloudIdentity is the in-process emulator), GET activity?window= (operations per bucket by
// outcome — ok, refused, failed — and p95 latency, and the same split per actor, counted in SQL
// from the audit trail). People and groups: people-routes.ts.

/** The activity chart's windows: 60 to 96 buckets each, so a burst is a bar, not a hairline. */
export const ACTIVITY_WINDOWS = {
  '1h': { seconds: 3_600, bucketSeconds: 60 },
  '6h': { seconds: 6 * 3_600, bucketSeconds: 300 },
  '24h': { seconds: 24 * 3_600, bucketSeconds: 900 },
  '7d': { seconds: 7 * 86_400, bucketSeconds: 7_200 },
} as const;
export type ActivityWindow = keyof typeof ACTIVITY_WINDOWS;

/**
 * One activity answer serves every request for the same window for this long (and requests that
 * arrive while it is computed wait for it): a week of a busy trail is the console's heaviest read,
 * and twenty consoles opening at once must not run it twenty times.
 */
export const ACTIVITY_REUSE_MS = 10_000;

interface Outcomes {
  ok: number;
  refused: number;
  failed: number;
}

export interface ActivityBucket extends Outcomes {
  /** Start of the bucket, RFC 3339 UTC. */
  at: string;
  /** Upper bound of the latency class holding the bucket's 95th percentile; null without operations. */
  p95Ms: number | null;
}

export interface Activity {
  window: ActivityWindow;
  from: string;
  to: string;
  bucketSeconds: number;
  totals: Outcomes;
  /** Every bucket of the window, oldest first (empty ones too). */
  buckets: ActivityBucket[];
  /** Per actor over the window, busiest first. */
  actors: Array<Outcomes & { actor: string }>;
}

/** Nearest-rank 95th percentile from counts per latency class: the upper bound of its class. */
function p95Of(classes: number[]): number | null {
  const total = classes.reduce((n, c) => n + c, 0);
  if (total === 0) return null;
  const rank = Math.ceil(0.95 * total);
  let seen = 0;
  for (let i = 0; i < classes.length; i++) {
    seen += classes[i] ?? 0;
    if (seen >= rank) return LATENCY_CLASS_MS[Math.min(i, LATENCY_CLASS_MS.length - 1)];
  }
  return LATENCY_CLASS_MS[LATENCY_CLASS_MS.length - 1];
}

/** The window ending at `now`: whole buckets aligned on the epoch, the last one still filling. */
export function activityRange(window: ActivityWindow, now: number): { from: number; to: number } {
  const { seconds, bucketSeconds } = ACTIVITY_WINDOWS[window];
  const size = bucketSeconds * 1000;
  const last = Math.floor(now / size) * size;
  return { from: last - (seconds / bucketSeconds - 1) * size, to: now };
}

export function buildActivity(
  window: ActivityWindow,
  range: { from: number; to: number },
  rows: AuditTallyRow[],
): Activity {
  const { seconds, bucketSeconds } = ACTIVITY_WINDOWS[window];
  const size = bucketSeconds * 1000;
  const count = seconds / bucketSeconds;
  const buckets = Array.from({ length: count }, (_, i) => ({
    at: new Date(range.from + i * size).toISOString(),
    ok: 0,
    refused: 0,
    failed: 0,
    classes: [] as number[],
  }));
  const totals: Outcomes = { ok: 0, refused: 0, failed: 0 };
  const actors = new Map<string, Outcomes & { actor: string }>();
  for (const row of rows) {
    const b = buckets[Math.floor((row.bucket - range.from) / size)];
    if (!b) continue;
    b[row.kind] += row.count;
    b.classes[row.latencyClass] = (b.classes[row.latencyClass] ?? 0) + row.count;
    totals[row.kind] += row.count;
    let actor = actors.get(row.actor);
    if (!actor) {
      actor = { actor: row.actor, ok: 0, refused: 0, failed: 0 };
      actors.set(row.actor, actor);
    }
    actor[row.kind] += row.count;
  }
  const sum = (o: Outcomes) => o.ok + o.refused + o.failed;
  return {
    window,
    from: new Date(range.from).toISOString(),
    to: new Date(range.to).toISOString(),
    bucketSeconds,
    totals,
    buckets: buckets.map(({ classes, ...b }) => ({ ...b, p95Ms: p95Of(Array.from(classes, (c) => c ?? 0)) })),
    actors: [...actors.values()].sort((a, b) => sum(b) - sum(a) || (a.actor < b.actor ? -1 : 1)),
  };
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

export function consoleDataRoutes(deps: ConsoleDataDeps) {
  const { store, readiness } = deps;
  const reused = new Map<ActivityWindow, { until: number; answer: Promise<Activity> }>();
  const activity = (window: ActivityWindow): Promise<Activity> => {
    const now = Date.now();
    const hit = reused.get(window);
    if (hit && hit.until > now) return hit.answer;
    const answer = (async () => {
      const range = activityRange(window, now);
      const rows = await store.auditTally(
        new Date(range.from).toISOString(),
        new Date(range.to).toISOString(),
        ACTIVITY_WINDOWS[window].bucketSeconds,
      );
      return buildActivity(window, range, rows);
    })();
    reused.set(window, { until: now + ACTIVITY_REUSE_MS, answer });
    // A failure is not reused.
    answer.catch(() => {
      if (reused.get(window)?.answer === answer) reused.delete(window);
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
        const p = queryParams(req, ['window']);
        const window = enumParam('window', p.window, Object.keys(ACTIVITY_WINDOWS) as ActivityWindow[]);
        res.json(await activity(window ?? '24h'));
      }),
    );
  };
}
