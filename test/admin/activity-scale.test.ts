// The activity chart's aggregation at production size: a million audit records (one a second,
// ending now; every 97th refused with a 409, every 89th failed with a 502), generated in one
// statement on the embedded store (a file, as in production). Every window's answer must equal an
// independent count of the trail (buckets by unixepoch() rather than the store's text arithmetic),
// its p95 must be the upper bound of the class holding the exact nearest-rank p95, and the event
// loop must turn between the store's chunks. Correctness only: nothing here is timed.
// PostgreSQL (when up) is checked the same way at PG_SCALE_ROWS (20,000: its per-row counter
// triggers make a bulk insert slow on a shared server). SCALE_ROWS=50000 makes a quick local run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ACTIVITY_WINDOWS,
  type ActivityWindow,
  activityRange,
  buildActivity,
} from '../../src/admin/console-data.js';
import { LATENCY_CLASS_MS } from '../../src/store/audit-sql.js';
import { openStore } from '../../src/store/index.js';
import { migrate } from '../../src/store/migrations.js';
import { openPostgresDriver } from '../../src/store/postgres-driver.js';
import { SqlStore } from '../../src/store/sql-store.js';
import { AUDIT_TALLY_CHUNK, type SqliteStore } from '../../src/store/sqlite-store.js';
import { fillAuditPostgres, fillAuditSqlite } from '../helpers/audit-rows.js';
import { freshPostgresUrl } from '../helpers/postgres.js';

const ROWS = Number(process.env.SCALE_ROWS ?? 1_000_000);
const PG_ROWS = Number(process.env.PG_SCALE_ROWS ?? 20_000);
const WINDOWS = Object.keys(ACTIVITY_WINDOWS) as ActivityWindow[];

interface TruthBucket {
  b: number;
  ok: number;
  refused: number;
  failed: number;
}

/** The class bound a p95 of `exact` ms must be reported as. */
const boundOf = (exact: number) => LATENCY_CLASS_MS.find((ms) => exact < ms) ?? LATENCY_CLASS_MS.at(-1);

describe(`activity aggregation at ${ROWS.toLocaleString('en')} audit records (embedded store)`, () => {
  let dataDir: string;
  let store: SqliteStore;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'activity-scale-'));
    store = (await openStore({ dataDir })) as SqliteStore;
    fillAuditSqlite(store.db, ROWS);
    store.db.exec(`UPDATE audit SET status = 502, scim_type = NULL WHERE id % 89 = 0 AND status = 200`);
  }, 300_000);
  afterAll(async () => {
    await store?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it.each(WINDOWS)(
    'window %s equals an independent count of the trail',
    async (window) => {
      const range = activityRange(window, Date.now());
      const { bucketSeconds } = ACTIVITY_WINDOWS[window];
      const since = new Date(range.from).toISOString();
      const until = new Date(range.to).toISOString();
      let turns = 0;
      let counting = true;
      const tick = () => {
        if (!counting) return;
        turns += 1;
        setImmediate(tick);
      };
      setImmediate(tick);
      const rows = await store.auditTally(since, until, bucketSeconds);
      counting = false;
      const answer = buildActivity(window, range, rows);

      const truth = store.db
        .prepare(
          `SELECT (unixepoch(at) / ${bucketSeconds}) * ${bucketSeconds} * 1000 AS b,
           sum(status < 400) AS ok, sum(status >= 400 AND status < 500) AS refused, sum(status >= 500) AS failed
         FROM audit WHERE at >= ? AND at < ? GROUP BY b ORDER BY b`,
        )
        .all(since, until) as TruthBucket[];
      const byStart = new Map(truth.map((t) => [t.b, t]));
      const total = truth.reduce((n, t) => n + t.ok + t.refused + t.failed, 0);
      expect(total).toBeGreaterThan(0);
      for (const b of answer.buckets) {
        const t = byStart.get(Date.parse(b.at)) ?? { ok: 0, refused: 0, failed: 0 };
        expect({ ok: b.ok, refused: b.refused, failed: b.failed }, b.at).toEqual({
          ok: t.ok,
          refused: t.refused,
          failed: t.failed,
        });
      }
      expect(answer.totals).toEqual({
        ok: truth.reduce((n, t) => n + t.ok, 0),
        refused: truth.reduce((n, t) => n + t.refused, 0),
        failed: truth.reduce((n, t) => n + t.failed, 0),
      });
      const actors = store.db
        .prepare(
          `SELECT actor, sum(status < 400) AS ok, sum(status >= 400 AND status < 500) AS refused,
           sum(status >= 500) AS failed FROM audit WHERE at >= ? AND at < ? GROUP BY actor`,
        )
        .all(since, until);
      expect(new Map(answer.actors.map((a) => [a.actor, a]))).toEqual(
        new Map((actors as Array<{ actor: string }>).map((a) => [a.actor, a])),
      );

      // p95 of three buckets with operations: the class bound of the exact nearest-rank p95.
      const busy = answer.buckets.filter((b) => b.ok + b.refused + b.failed > 0);
      for (const b of [busy[0], busy[Math.floor(busy.length / 2)], busy[busy.length - 1]]) {
        const n = b.ok + b.refused + b.failed;
        const start = Date.parse(b.at);
        const [{ d }] = store.db
          .prepare(
            'SELECT duration_ms AS d FROM audit WHERE at >= ? AND at < ? ORDER BY duration_ms LIMIT 1 OFFSET ?',
          )
          .all(
            new Date(Math.max(start, range.from)).toISOString(),
            new Date(Math.min(start + bucketSeconds * 1000, range.to)).toISOString(),
            Math.ceil(0.95 * n) - 1,
          ) as Array<{ d: number }>;
        expect(b.p95Ms, b.at).toBe(boundOf(d));
      }
      // The store read the window in chunks, the event loop turning between them.
      expect(turns).toBeGreaterThanOrEqual(Math.floor(total / AUDIT_TALLY_CHUNK) - 1);
    },
    300_000,
  );
});

const pg = await freshPostgresUrl('activity');
describe.skipIf('skip' in pg)(
  `activity aggregation at ${PG_ROWS.toLocaleString('en')} audit records (PostgreSQL)`,
  () => {
    if ('skip' in pg) {
      console.warn(`[skip] ${pg.skip}`);
      return;
    }
    const driver = openPostgresDriver({ connectionString: pg.url });
    const store = new SqlStore(driver);
    beforeAll(async () => {
      await migrate(driver);
      await fillAuditPostgres(driver, PG_ROWS);
      await driver.query(
        `UPDATE audit SET status = 502, scim_type = NULL WHERE id % 89 = 0 AND status = 200`,
      );
    }, 300_000);
    afterAll(async () => {
      await driver.close();
      await pg.drop();
    });

    it.each(WINDOWS)(
      'window %s equals an independent count of the trail',
      async (window) => {
        const range = activityRange(window, Date.now());
        const { bucketSeconds } = ACTIVITY_WINDOWS[window];
        const since = new Date(range.from).toISOString();
        const until = new Date(range.to).toISOString();
        const answer = buildActivity(window, range, await store.auditTally(since, until, bucketSeconds));
        const truth = await driver.query<{ b: Date; ok: number; refused: number; failed: number }>(
          `SELECT date_bin(make_interval(secs => $3), at, 'epoch') AS b,
         count(*) FILTER (WHERE status < 400)::int AS ok,
         count(*) FILTER (WHERE status >= 400 AND status < 500)::int AS refused,
         count(*) FILTER (WHERE status >= 500)::int AS failed
       FROM audit WHERE at >= $1 AND at < $2 GROUP BY b`,
          [since, until, bucketSeconds],
        );
        expect(truth.length).toBeGreaterThan(0);
        const byStart = new Map(truth.map((t) => [t.b.getTime(), t]));
        for (const b of answer.buckets) {
          const t = byStart.get(Date.parse(b.at)) ?? { ok: 0, refused: 0, failed: 0 };
          expect({ ok: b.ok, refused: b.refused, failed: b.failed }, b.at).toEqual({
            ok: t.ok,
            refused: t.refused,
            failed: t.failed,
          });
        }
        const busy = answer.buckets.filter((b) => b.ok + b.refused + b.failed > 0);
        const b = busy[Math.floor(busy.length / 2)];
        const [{ d }] = await driver.query<{ d: number }>(
          `SELECT percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS d FROM audit WHERE at >= $1 AND at < $2`,
          [b.at, new Date(Date.parse(b.at) + bucketSeconds * 1000).toISOString()],
        );
        expect(b.p95Ms).toBe(boundOf(d));
      },
      120_000,
    );
  },
);
