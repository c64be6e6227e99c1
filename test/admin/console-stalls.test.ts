// The embedded store runs on the bridge's event loop: a console read that holds the loop holds
// every request, /healthz included (the liveness probe then kills the pod). Checked at production
// size (AUDIT_ROWS records, generated in one statement) by what can be counted rather than timed:
// how much store work runs between two turns of the event loop, and whether /healthz is answered
// while an export is still being read. The /healthz latencies are printed, not asserted (they
// depend on the machine); `npx tsx bench/console-stalls.ts` measures them at a million records
// (STALL_AUDIT_ROWS=1000000 runs this file at that size too: about a minute on 2 busy cores).
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPORT_PAGE } from '../../src/admin/audit-routes.js';
import {
  AUDIT_ACTORS,
  AUDIT_TALLY_BOUNDARY,
  AUDIT_TALLY_SQLITE,
  auditListSql,
  PRUNE_AUDIT,
} from '../../src/store/audit-sql.js';
import type { AuditQuery } from '../../src/store/audit-types.js';
import { AUDIT_SCAN_CHUNK, AUDIT_TALLY_CHUNK, type SqliteStore } from '../../src/store/sqlite-store.js';
import type { BridgeStore } from '../../src/store/types.js';
import { fillAuditSqlite, filledTotals } from '../helpers/audit-rows.js';
import { type Harness, startHarness } from '../helpers/harness.js';

const ADMIN = 'console-stalls-admin-token-0123';
const AUDIT_ROWS = Number(process.env.STALL_AUDIT_ROWS ?? 300_000);

/** Counts the event loop's turns (one setImmediate per turn) and what ran in each. */
class TurnCounter {
  turns = 0;
  private stopped = false;
  private last = 0;
  maxPerTurn = 0;
  constructor(private readonly work: () => number) {
    this.last = work();
    const tick = () => {
      if (this.stopped) return;
      this.turns += 1;
      const now = this.work();
      this.maxPerTurn = Math.max(this.maxPerTurn, now - this.last);
      this.last = now;
      setImmediate(tick);
    };
    setImmediate(tick);
  }
  stop(): void {
    this.stopped = true;
  }
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
};

function plan(store: SqliteStore, sql: string, params: readonly unknown[]): string[] {
  const named: Record<string, unknown> = {};
  params.forEach((p, i) => {
    named[i + 1] = p;
  });
  return (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(named) as Array<{ detail: string }>).map(
    (r) => r.detail,
  );
}

describe(`console reads at ${AUDIT_ROWS.toLocaleString('en')} audit records (embedded store)`, () => {
  let h: Harness;
  let server: Server;
  let base: string;
  const calls = { listAudit: 0, auditTally: 0 };

  beforeAll(async () => {
    h = await startHarness({
      env: { ADMIN_TOKENS: ADMIN },
      // Counts the pages an export reads (the store the app uses; the harness keeps the raw one).
      wrapStore: (store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            if (prop === 'listAudit')
              return (q: AuditQuery) => {
                calls.listAudit += 1;
                return target.listAudit(q);
              };
            if (prop === 'auditTally')
              return (since: string, until: string, bucketSeconds: number) => {
                calls.auditTally += 1;
                return target.auditTally(since, until, bucketSeconds);
              };
            const value = Reflect.get(target, prop, receiver);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        }) as BridgeStore,
    });
    const started = performance.now();
    fillAuditSqlite((h.store as SqliteStore).db, AUDIT_ROWS);
    console.log(
      `[stalls] ${AUDIT_ROWS} audit rows generated in ${Math.round(performance.now() - started)} ms`,
    );
    server = createServer(h.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 120_000);
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await h?.close();
  });

  const healthz = async (): Promise<number> => {
    const t = performance.now();
    const res = await fetch(`${base}/healthz`);
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    return performance.now() - t;
  };

  it('audit.jsonl turns the event loop between pages, answers /healthz meanwhile, and stops when the client goes away', async () => {
    const totalPages = Math.ceil(AUDIT_ROWS / EXPORT_PAGE);
    calls.listAudit = 0;
    const turns = new TurnCounter(() => calls.listAudit);
    let bytes = 0;
    let ended = false;
    let response: IncomingMessage | undefined;
    const request = get(`${base}/admin/api/audit.jsonl`, { headers: { Authorization: `Bearer ${ADMIN}` } });
    request.on('error', () => {});
    await new Promise<void>((resolve) => {
      request.on('response', (res) => {
        response = res;
        expect(res.statusCode).toBe(200);
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          resolve();
        });
        res.on('end', () => {
          ended = true;
        });
        res.on('error', () => {});
      });
    });

    // /healthz, one after another, while the export streams.
    const latencies: number[] = [];
    const pagesAtAnswer: number[] = [];
    while (latencies.length < 30 && !ended) {
      latencies.push(await healthz());
      pagesAtAnswer.push(calls.listAudit);
    }
    const answeredWhileStreaming = pagesAtAnswer.filter((p) => p < totalPages).length;
    console.log(
      `[stalls] /healthz during export: ${latencies.length} answered, p50 ${percentile(latencies, 50).toFixed(1)} ms, ` +
        `p99 ${percentile(latencies, 99).toFixed(1)} ms; ${calls.listAudit}/${totalPages} pages read, ${bytes} bytes received; ` +
        `at most ${turns.maxPerTurn} page(s) per event-loop turn`,
    );
    expect(ended).toBe(false);
    expect(answeredWhileStreaming).toBeGreaterThanOrEqual(10);
    // One page of store work (and its write) between turns: the loop is never held for more.
    expect(turns.maxPerTurn).toBeLessThanOrEqual(1);

    // The client goes away: the export stops reading the store.
    request.destroy();
    response?.destroy();
    const stable = async () => {
      let before = -1;
      while (before !== calls.listAudit) {
        before = calls.listAudit;
        for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return before;
    };
    const pagesWhenGone = await stable();
    await new Promise((resolve) => setTimeout(resolve, 200));
    turns.stop();
    expect(calls.listAudit).toBe(pagesWhenGone);
    expect(pagesWhenGone).toBeLessThan(totalPages);
  }, 60_000);

  it('a sparse filter over the whole trail is read in chunks, the event loop turning between them', async () => {
    const store = h.store as SqliteStore;
    // No record matches (nothing is newer than now): every id is visited, AUDIT_SCAN_CHUNK at a time.
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const turns = new TurnCounter(() => 0);
    const rows = await store.listAudit({ since: future, limit: 50 });
    turns.stop();
    expect(rows).toEqual([]);
    expect(turns.turns).toBeGreaterThanOrEqual(Math.floor(AUDIT_ROWS / AUDIT_SCAN_CHUNK) - 1);
    // Each chunk reads a range of ids, through the table or an index (whatever else the plan does,
    // e.g. sort the matches of an OR, is bounded by that range).
    const window = { afterId: '1000', beforeId: String(1001 + AUDIT_SCAN_CHUNK), limit: 50 };
    const filters: Array<Omit<AuditQuery, 'limit'>> = [
      {},
      { actor: 'okta' },
      { resource: 'user7@example.com' },
      { outcome: 'error' },
      { outcome: 'ok' },
      { since: future },
      { until: future, order: 'asc' },
      { actor: 'okta', since: future, outcome: 'error' },
    ];
    for (const f of filters) {
      const { sql, params } = auditListSql({ ...f, ...window }, { unindexedTime: true });
      const reads = plan(store, sql, params).filter((step) => /^(SCAN|SEARCH) audit\b/.test(step));
      expect(reads.length, JSON.stringify(f)).toBeGreaterThan(0);
      // A resource's records are found through its indexes (bounded by that person's history, not
      // the trail) and then read by id.
      for (const step of reads)
        expect(step, JSON.stringify(f)).toMatch(
          /\b(rowid|id)>\? AND \1<\?\)|\(rowid=\?\)|\((resource_id|resource_name_lower)=\?/,
        );
    }
  }, 60_000);

  it('overview reads per-actor counters kept by triggers, not the trail, and they match the trail', async () => {
    const store = h.store as SqliteStore;
    const steps = plan(store, AUDIT_ACTORS, [50]).join(' | ');
    expect(steps).not.toMatch(/\baudit\b(?!_actors)/);
    const started = performance.now();
    const res = await fetch(`${base}/admin/api/overview`, { headers: { Authorization: `Bearer ${ADMIN}` } });
    const elapsed = performance.now() - started;
    expect(res.status).toBe(200);
    const body = (await res.json()) as { actors: Array<{ actor: string; writes: number; errors: number }> };
    console.log(`[stalls] /admin/api/overview at ${AUDIT_ROWS} audit rows: ${elapsed.toFixed(1)} ms`);
    const truth = store.db
      .prepare('SELECT actor, count(*) AS writes, sum(status >= 400) AS errors FROM audit GROUP BY actor')
      .all() as Array<{ actor: string; writes: number; errors: number }>;
    expect(new Map(body.actors.map((a) => [a.actor, { writes: a.writes, errors: a.errors }]))).toEqual(
      new Map(truth.map((a) => [a.actor, { writes: a.writes, errors: a.errors }])),
    );
    // The generated rows are all there (plus whatever the earlier tests' requests left: none are SCIM writes).
    for (const [actor, t] of filledTotals(AUDIT_ROWS)) {
      expect(body.actors.find((a) => a.actor === actor)).toMatchObject(t);
    }
  });

  it('activity counts a week in SQL, chunk by chunk through the time index, the event loop turning between them', async () => {
    const store = h.store as SqliteStore;
    const since = new Date(Date.now() - 7 * 86_400_000).toISOString();
    const until = new Date().toISOString();
    const boundary = plan(store, AUDIT_TALLY_BOUNDARY, [since, 0, until, AUDIT_TALLY_CHUNK]).join(' | ');
    expect(boundary).toMatch(/USING COVERING INDEX audit_at_cover_idx/);
    expect(boundary).not.toMatch(/TEMP B-TREE/);
    const chunk = plan(store, AUDIT_TALLY_SQLITE, [since, 0, until, 0, 120]).join(' | ');
    expect(chunk).toMatch(/USING COVERING INDEX audit_at_cover_idx \(at>\? AND at<\?\)/);
    const turns = new TurnCounter(() => 0);
    const rows = await store.auditTally(since, until, 7_200);
    turns.stop();
    const counted = rows.reduce((n, r) => n + r.count, 0);
    const [{ n }] = store.db
      .prepare('SELECT count(*) AS n FROM audit WHERE at >= ? AND at < ?')
      .all(since, until) as Array<{ n: number }>;
    expect(counted).toBe(n);
    expect(turns.turns).toBeGreaterThanOrEqual(Math.floor(n / AUDIT_TALLY_CHUNK) - 1);
    // Twenty consoles opening at once read the trail once.
    calls.auditTally = 0;
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        fetch(`${base}/admin/api/activity?window=7d`, { headers: { Authorization: `Bearer ${ADMIN}` } }),
      ),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    const bodies = await Promise.all(answers.map((r) => r.json()));
    expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
    expect(calls.auditTally).toBe(1);
  });

  it('a retention batch reads the time index (none of the trail is old enough here: nothing to walk)', async () => {
    const store = h.store as SqliteStore;
    const before = new Date(Date.now() - 180 * 86_400_000).toISOString();
    const steps = plan(store, PRUNE_AUDIT, [before, 1000]);
    const reads = steps.filter((step) => /^(SCAN|SEARCH) audit\b/.test(step));
    expect(reads.join(' | ')).not.toMatch(/SCAN audit\b/);
    expect(reads.join(' | ')).toMatch(/audit_at_cover_idx \(at<\?\)/);
    const started = performance.now();
    expect(await store.pruneAudit(before, 1000)).toBe(0);
    console.log(
      `[stalls] retention batch with nothing to prune: ${(performance.now() - started).toFixed(1)} ms`,
    );
  });
});
