import { describe, expect, it } from 'vitest';
import { closedLoop } from '../../bench/lib/load.js';
import {
  aggregate,
  compare,
  diffCounts,
  median,
  pairedDifference,
  pairedRatio,
  parseStoreOps,
  percentile,
  type RoundSample,
  type RoundStats,
  roundStats,
} from '../../bench/lib/stats.js';

const sample = (over: Partial<RoundSample> = {}): RoundSample => ({
  requests: 4,
  errors: 0,
  errorKinds: {},
  elapsedMs: 2000,
  latenciesMs: [4, 1, 3, 2],
  cpuMs: 8,
  upstreamCalls: { GetUser: 4, UpdateUser: 2 },
  ...over,
});

const stats = (over: Partial<RoundStats>): RoundStats => ({
  requests: 100,
  errors: 0,
  throughput: 100,
  p50Ms: 1,
  p99Ms: 2,
  cpuPerRequestMs: 1,
  upstreamPerRequest: 1,
  upstreamByAction: { GetUser: 1 },
  ...over,
});

describe('percentile (nearest rank)', () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);

  it('gives the smallest value with at least p % at or below it', () => {
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile(values, 0)).toBe(1);
    expect(percentile([1, 2, 3], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([7], 99)).toBe(7);
  });

  it('is NaN for no values', () => {
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('median', () => {
  it('takes the middle value, or the mean of the two middle ones', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5])).toBe(5);
  });

  it('ignores NaN and is NaN for nothing', () => {
    expect(median([Number.NaN, 1, 3])).toBe(2);
    expect(median([])).toBeNaN();
  });

  it('does not reorder its input', () => {
    const input = [3, 1, 2];
    median(input);
    expect(input).toEqual([3, 1, 2]);
  });
});

describe('roundStats', () => {
  it('reduces a round to throughput, percentiles and per-request costs', () => {
    const s = roundStats(sample({ peakRssKb: 2048 }));
    expect(s.throughput).toBe(2); // 4 requests in 2 s
    expect(s.p50Ms).toBe(2);
    expect(s.p99Ms).toBe(4);
    expect(s.cpuPerRequestMs).toBe(2);
    expect(s.upstreamPerRequest).toBe(1.5);
    expect(s.upstreamByAction).toEqual({ GetUser: 1, UpdateUser: 0.5 });
    expect(s.peakRssMb).toBe(2);
  });

  it('keeps the error count and leaves RSS out when unknown', () => {
    const s = roundStats(sample({ errors: 1 }));
    expect(s.errors).toBe(1);
    expect(s.peakRssMb).toBeUndefined();
  });

  it('gives NaN per-request figures for an empty round instead of dividing by zero', () => {
    const s = roundStats(sample({ requests: 0, latenciesMs: [], upstreamCalls: {} }));
    expect(s.cpuPerRequestMs).toBeNaN();
    expect(s.p50Ms).toBeNaN();
  });
});

describe('diffCounts', () => {
  it('subtracts per key and drops zeros', () => {
    expect(diffCounts({ GetUser: 10, ListUsers: 3 }, { GetUser: 4, ListUsers: 3 })).toEqual({ GetUser: 6 });
    expect(diffCounts({ CreateUser: 2 }, {})).toEqual({ CreateUser: 2 });
  });
});

describe('aggregate (medians of rounds)', () => {
  it('takes the median of every figure, totals requests and errors, and the largest RSS', () => {
    const a = aggregate(
      [
        stats({ throughput: 100, p50Ms: 5, errors: 1, peakRssMb: 100 }),
        stats({ throughput: 300, p50Ms: 1, peakRssMb: 120 }),
        stats({ throughput: 200, p50Ms: 3, errors: 2, peakRssMb: 110 }),
      ],
      { 'HTTP 500': 3 },
    );
    expect(a.rounds).toBe(3);
    expect(a.throughput).toBe(200);
    expect(a.p50Ms).toBe(3);
    expect(a.requests).toBe(300);
    expect(a.errors).toBe(3);
    expect(a.errorKinds).toEqual({ 'HTTP 500': 3 });
    expect(a.peakRssMb).toBe(120);
  });

  it('takes medians per upstream action, counting absent as zero', () => {
    const a = aggregate([
      stats({ upstreamByAction: { GetUser: 1 } }),
      stats({ upstreamByAction: { GetUser: 1, ListUsers: 2 } }),
      stats({ upstreamByAction: { GetUser: 3, ListUsers: 2 } }),
    ]);
    expect(a.upstreamByAction).toEqual({ GetUser: 1, ListUsers: 2 });
  });
});

describe('paired ratios and differences over interleaved rounds', () => {
  it('is the median of per-pair ratios, not the ratio of medians', () => {
    // Pairs: 2/1, 10/4, 3/1 → ratios 2, 2.5, 3 → 2.5 (the ratio of medians would be 3/1 = 3).
    expect(pairedRatio([2, 10, 3], [1, 4, 1])).toBe(2.5);
  });

  it('skips pairs with a zero floor and unpaired rounds', () => {
    expect(pairedRatio([2, 5, 9], [1, 0])).toBe(2);
    expect(pairedRatio([], [])).toBeNaN();
  });

  it('gives the median added latency', () => {
    expect(pairedDifference([12, 15, 11], [10, 10, 10])).toBe(2);
  });

  it('compare() puts it together', () => {
    const bridge = [
      stats({ throughput: 50, p50Ms: 4, cpuPerRequestMs: 3 }),
      stats({ throughput: 60, p50Ms: 6, cpuPerRequestMs: 3 }),
    ];
    const floor = [
      stats({ throughput: 100, p50Ms: 2, cpuPerRequestMs: 1 }),
      stats({ throughput: 100, p50Ms: 2, cpuPerRequestMs: 1 }),
    ];
    const c = compare(bridge, floor);
    expect(c.bridge.throughput).toBe(55);
    expect(c.floor.throughput).toBe(100);
    expect(c.ratio.throughput).toBeCloseTo(0.55);
    expect(c.ratio.p50).toBe(2.5);
    expect(c.ratio.cpuPerRequest).toBe(3);
    expect(c.added.p50Ms).toBe(3);
  });
});

describe('store operations from /metrics', () => {
  it('sums the histogram counts per operation over outcomes', () => {
    const text = [
      '# HELP scim_bridge_store_operation_duration_seconds Store operations',
      'scim_bridge_store_operation_duration_seconds_bucket{le="0.001",operation="getUser",outcome="ok"} 3',
      'scim_bridge_store_operation_duration_seconds_count{operation="getUser",outcome="ok"} 10',
      'scim_bridge_store_operation_duration_seconds_count{operation="getUser",outcome="error"} 2',
      'scim_bridge_store_operation_duration_seconds_count{operation="updateUser",outcome="ok"} 5',
      'scim_bridge_http_request_duration_seconds_count{method="GET"} 99',
    ].join('\n');
    expect(parseStoreOps(text)).toEqual({ getUser: 12, updateUser: 5 });
  });

  it('gives per-request store figures and their medians', () => {
    const s = roundStats(sample({ storeOps: { getUser: 4, updateUser: 2 } }));
    expect(s.storePerRequest).toBe(1.5);
    expect(s.storeByOperation).toEqual({ getUser: 1, updateUser: 0.5 });
    expect(roundStats(sample()).storePerRequest).toBeUndefined();
    const a = aggregate([
      stats({ storePerRequest: 1, storeByOperation: { getUser: 1 } }),
      stats({ storePerRequest: 3, storeByOperation: { getUser: 2, findUserByUserName: 1 } }),
      stats({ storePerRequest: 2, storeByOperation: { getUser: 2 } }),
    ]);
    expect(a.storePerRequest).toBe(2);
    expect(a.storeByOperation).toEqual({ findUserByUserName: 0, getUser: 2 });
  });
});

describe('closedLoop (counts only, no timing assertions)', () => {
  it('counts requests, error answers and thrown errors by kind', async () => {
    let n = 0;
    const r = await closedLoop({
      concurrency: 3,
      durationMs: 30,
      op: async () => {
        // The request's own number, taken before it yields (other workers move n meanwhile).
        const k = ++n;
        await new Promise((resolve) => setImmediate(resolve));
        if (k % 3 === 0) return 'HTTP 409';
        if (k % 5 === 0) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
        return undefined;
      },
    });
    expect(r.requests).toBe(n);
    expect(r.latenciesMs).toHaveLength(n);
    expect(r.errors).toBe((r.errorKinds['HTTP 409'] ?? 0) + (r.errorKinds.ECONNRESET ?? 0));
    expect(r.errorKinds['HTTP 409']).toBe(Math.floor(n / 3));
    expect(r.errorSamples.every((m) => m === 'reset')).toBe(true);
  });

  it('with a rate, starts exactly one request per slot of the schedule', async () => {
    const r = await closedLoop({
      concurrency: 4,
      durationMs: 50,
      ratePerSec: 100,
      op: async () => undefined,
    });
    // Slots at 0, 10, 20, 30 and 40 ms of a 50 ms window.
    expect(r.requests).toBe(5);
    expect(r.errors).toBe(0);
  });
});
