import { describe, expect, it } from 'vitest';
import {
  type BenchResults,
  fmt,
  fmtSigned,
  formatReport,
  formatSummary,
  mdTable,
  meetsLatencyTarget,
  reportFileName,
  type ScenarioResult,
  scaleGrowth,
  textTable,
} from '../../bench/lib/report.js';
import { type AggregateStats, compare, type RoundStats } from '../../bench/lib/stats.js';

const round = (over: Partial<RoundStats>): RoundStats => ({
  requests: 1000,
  errors: 0,
  throughput: 200,
  p50Ms: 5,
  p99Ms: 20,
  cpuPerRequestMs: 2,
  upstreamPerRequest: 1,
  upstreamByAction: { GetUser: 1 },
  peakRssMb: 300,
  ...over,
});

const agg = (over: Partial<AggregateStats>): AggregateStats => ({
  rounds: 3,
  requests: 3000,
  errors: 0,
  errorKinds: {},
  throughput: 200,
  p50Ms: 5,
  p99Ms: 20,
  cpuPerRequestMs: 2,
  upstreamPerRequest: 1,
  upstreamByAction: { GetUser: 1 },
  ...over,
});

function scenario(title: string, bridge: Partial<RoundStats>, floor: Partial<RoundStats>): ScenarioResult {
  return {
    key: title,
    title,
    floorCalls: 'GetUser',
    comparison: compare(
      [round(bridge), round(bridge), round(bridge)],
      [round(floor), round(floor), round(floor)],
    ),
  };
}

function results(over: Partial<BenchResults> = {}): BenchResults {
  return {
    machine: {
      date: '2026-11-28T10:00:00.000Z',
      host: 'bench host',
      nproc: 2,
      cpuModel: 'AMD EPYC',
      node: 'v20.20.2',
      memoryGb: 24,
      loadAvgStart: [1.5, 1.25, 1],
      loadAvgEnd: [2, 1.5, 1],
    },
    config: {
      quick: false,
      durationS: 5,
      rounds: 3,
      concurrency: 16,
      latencyConcurrency: 64,
      upstreamLatencyMs: 30,
      pacedRate: 25,
      store: 'embedded',
      logLevel: 'info',
      scaleSizes: [100, 100_000],
      runId: 'b1',
    },
    main: [
      scenario(
        'GET /Users/{id}',
        { throughput: 200, p50Ms: 5 },
        { throughput: 1000, p50Ms: 1, cpuPerRequestMs: 0.25 },
      ),
    ],
    scale: [
      { title: 'GET /Users/{id}', users: 100, stats: agg({ p50Ms: 4, p99Ms: 10 }) },
      { title: 'GET /Users/{id}', users: 100_000, stats: agg({ p50Ms: 5, p99Ms: 10 }) },
    ],
    latency: [
      scenario(
        'GET /Users/{id}',
        { throughput: 400, p50Ms: 80, p99Ms: 120 },
        { throughput: 1000, p50Ms: 60, p99Ms: 90 },
      ),
    ],
    notes: ['a note'],
    ...over,
  };
}

describe('number formatting', () => {
  it('keeps precision for small figures and drops it for large ones', () => {
    expect(fmt(1.234, 'ms')).toBe('1.23');
    expect(fmt(12.34, 'ms')).toBe('12.3');
    expect(fmt(123.4, 'ms')).toBe('123');
    expect(fmt(99.44, 'rps')).toBe('99.4');
    expect(fmt(1234.5, 'rps')).toBe('1235');
    expect(fmt(0.5, 'ratio')).toBe('0.50×');
    expect(fmt(0.1234, 'cpu')).toBe('0.123');
    expect(fmt(100000, 'int')).toBe('100,000');
    expect(fmt(Number.NaN, 'ms')).toBe('—');
    expect(fmt(undefined, 'mb')).toBe('—');
  });

  it('signs added latency', () => {
    expect(fmtSigned(1.5)).toBe('+1.50');
    expect(fmtSigned(-0.25)).toBe('-0.25');
    expect(fmtSigned(Number.NaN)).toBe('—');
  });
});

describe('tables', () => {
  it('builds a markdown table with alignment and escaped pipes', () => {
    expect(mdTable(['a', 'b'], [['x|y', '1']])).toBe('| a | b |\n| :--- | ---: |\n| x\\|y | 1 |');
  });

  it('pads a text table: first column left, others right', () => {
    expect(
      textTable(
        ['name', 'n'],
        [
          ['ab', '1'],
          ['c', '100'],
        ],
      ),
    ).toBe('name    n\n----  ---\nab      1\nc     100');
  });
});

describe('targets and growth', () => {
  it('requires 25 req/s and zero errors', () => {
    expect(meetsLatencyTarget(agg({ throughput: 25 }))).toBe(true);
    expect(meetsLatencyTarget(agg({ throughput: 24.9 }))).toBe(false);
    expect(meetsLatencyTarget(agg({ throughput: 100, errors: 1 }))).toBe(false);
  });

  it('compares the largest directory with the smallest', () => {
    const [g] = scaleGrowth(results().scale);
    expect(g.title).toBe('GET /Users/{id}');
    expect(g.p50).toBe(1.25);
    expect(g.p99).toBe(1);
    expect(g.calls).toBe(1);
  });
});

describe('report', () => {
  it('names the file after the date and the host, and marks partial runs', () => {
    const m = results().machine;
    expect(reportFileName(m, { quick: false })).toBe('2026-11-28-bench-host.md');
    expect(reportFileName(m, { quick: true, phases: ['main', 'scale', 'latency'], partial: false })).toBe(
      '2026-11-28-bench-host-quick.md',
    );
    expect(reportFileName(m, { quick: false, phases: ['ab'], partial: true })).toBe(
      '2026-11-28-bench-host-ab.md',
    );
  });

  it('states the machine, the method and every table', () => {
    const md = formatReport(results());
    expect(md).toContain('2 CPUs (nproc), AMD EPYC');
    expect(md).toContain('v20.20.2');
    expect(md).toContain('1.50 / 1.25 / 1.00');
    expect(md).toContain('## Throughput, latency, CPU (concurrency 16');
    // bridge 200 req/s vs floor 1000: ratio 0.20×; CPU 2 vs 0.25 ms: 8.00×
    expect(md).toMatch(
      /\| GET \/Users\/\{id\} \| 200 \| 1000 \| 0\.20× \| 5\.00 \| 1\.00 \|.*\| 8\.00× \| 0\/0 \|/,
    );
    expect(md).toContain('## Scale: lookups with 100 and 100,000 users upstream');
    expect(md).toContain('| GET /Users/{id} | 1.25× | 1.00× | 1.00× |');
    expect(md).toContain('## 30 ms upstream latency, 64 concurrent clients');
    expect(md).toMatch(
      /\| GET \/Users\/\{id\} \| 400 \| 1000 \| 80\.0 \| 60\.0 \| \+20\.0 \| 120 \| 90\.0 \| \+30\.0 \| 0\/0 \| yes \|/,
    );
    expect(md).toContain('Every scenario sustained at least 25 req/s with zero errors.');
    expect(md).toContain('- a note');
    expect(md).not.toContain('QUICK');
  });

  it('flags a missed target and a quick run', () => {
    const r = results({
      latency: [scenario('POST /Users', { throughput: 10, errors: 2 }, { throughput: 100 })],
    });
    r.config.quick = true;
    const md = formatReport(r);
    expect(md).toContain('QUICK smoke run');
    expect(md).toContain('**Target missed:**');
    expect(md).toMatch(/\| POST \/Users \|.*\| 6\/0 \| NO \|/);
  });

  it('adds the paced latency table when there is one', () => {
    const md = formatReport(
      results({
        latencyPaced: [
          scenario('GET /Users/{id}', { throughput: 24.9, p50Ms: 33, p99Ms: 40 }, { p50Ms: 31, p99Ms: 35 }),
        ],
      }),
    );
    expect(md).toContain('### The same at a steady 25 req/s (30 ms upstream latency)');
    expect(md).toMatch(
      /\| GET \/Users\/\{id\} \| 24\.9 \| 33\.0 \| 31\.0 \| \+2\.00 \| 40\.0 \| 35\.0 \| \+5\.00 \| 2\.00 \| 0\/0 \|/,
    );
    expect(formatSummary(results({ latencyPaced: [] }))).not.toContain('steady');
  });

  it('leaves out the sections of phases that did not run', () => {
    const md = formatReport(results({ main: [], scale: [] }));
    expect(md).not.toContain('## Throughput');
    expect(md).not.toContain('## Scale');
    expect(md).toContain('## 30 ms upstream latency');
    const text = formatSummary(results({ main: [], scale: [] }));
    expect(text.startsWith('30 ms upstream latency, 64 clients:')).toBe(true);
  });

  it('prints a terminal summary with the three tables', () => {
    const text = formatSummary(results());
    expect(text).toContain('Main (concurrency 16, medians of 3 interleaved rounds):');
    expect(text).toContain('Scale:');
    expect(text).toContain('30 ms upstream latency, 64 clients:');
    expect(text).not.toContain('|');
  });
});
