import { describe, expect, it } from 'vitest';
import { type BenchResults, formatReport } from '../../bench/lib/report.js';
import type { RoundStats } from '../../bench/lib/stats.js';
import {
  COST_TARGETS,
  durableFloorVerdicts,
  evaluateTargets,
  formatProxyPhase,
  type ProxyPhaseResult,
  proxyRatioRanges,
  proxyRatios,
  proxySummary,
  ratioText,
  storeAddedMb,
  type TargetRun,
  verdict,
} from '../../bench/lib/targets.js';

const round = (throughput: number, cpuPerRequestMs: number, calls = 1): RoundStats => ({
  requests: throughput * 5,
  errors: 0,
  throughput,
  p50Ms: 5,
  p99Ms: 20,
  cpuPerRequestMs,
  upstreamPerRequest: calls,
  upstreamByAction: { CreateUser: calls },
});

const run = (label: string, post: RoundStats[], get: RoundStats[], peakRssMb: number): TargetRun => ({
  label,
  post,
  get,
  postErrors: {},
  getErrors: {},
  peakRssMb,
});

// Floor: 1 ms per POST, 0.5 ms per GET, 1,000 POST/s, 100 MB.
const floor = run(
  'bare proxy (floor)',
  [round(1000, 1), round(900, 1.1), round(1100, 0.9)],
  [round(2000, 0.5), round(2000, 0.5), round(2000, 0.5)],
  100,
);
// Bridge: CPU per POST 2× the floor's in every pair, GET 1.1×, POST throughput 0.4×, RSS 1.5×.
const bridge = run(
  'bridge (embedded store)',
  [round(400, 2, 2), round(360, 2.2, 2), round(440, 1.8, 2)],
  [round(1800, 0.55), round(1800, 0.55), round(1800, 0.55)],
  150,
);

// Durable floor: CPU per POST 1.6× the floor's, GET 1.1×, POST throughput 0.6×, RSS 1.2×.
const durableFloor = run(
  'durable floor',
  [round(600, 1.6, 1), round(540, 1.76, 1), round(660, 1.44, 1)],
  [round(1900, 0.55), round(1900, 0.55), round(1900, 0.55)],
  120,
);

const phase = (over: Partial<ProxyPhaseResult> = {}): ProxyPhaseResult => ({
  concurrency: 16,
  rounds: 3,
  durationS: 5,
  bridge,
  floor,
  ...over,
});

describe('proxyRatios', () => {
  it('pairs interleaved rounds for CPU and throughput, and divides peak RSS', () => {
    const r = proxyRatios(bridge, floor);
    expect(r.cpuPost).toBeCloseTo(2);
    expect(r.cpuGet).toBeCloseTo(1.1);
    expect(r.postThroughput).toBeCloseTo(0.4);
    expect(r.getThroughput).toBeCloseTo(0.9);
    expect(r.peakRss).toBeCloseTo(1.5);
  });

  it('has no RSS ratio without a floor figure', () => {
    expect(proxyRatios(bridge, { ...floor, peakRssMb: Number.NaN }).peakRss).toBeNaN();
  });
});

describe('proxyRatioRanges and ratioText', () => {
  it('give the lowest and highest pair beside the median', () => {
    const noisy = { ...bridge, post: [round(400, 2), round(300, 3.3), round(500, 1.8)] };
    const ranges = proxyRatioRanges(noisy, floor);
    expect(ranges.cpuPost[0]).toBeCloseTo(2);
    expect(ranges.cpuPost[1]).toBeCloseTo(3);
    expect(ratioText(proxyRatios(noisy, floor).cpuPost, ranges.cpuPost)).toBe('2.00× (2.00–3.00)');
    expect(formatProxyPhase(phase({ bridge: noisy })).join('\n')).toContain(
      "| CPU per POST /Users | ≤ 1.5× the floor's | 2.00× (2.00–3.00) not met | — |",
    );
  });

  it('show the median alone when every pair agrees or nothing was measured', () => {
    expect(ratioText(2, [2, 2.0000001])).toBe('2.00×');
    expect(ratioText(2)).toBe('2.00×');
    expect(ratioText(Number.NaN, [Number.NaN, Number.NaN])).toBe('—');
  });
});

describe('verdict', () => {
  const [cpuPost, , postThroughput] = COST_TARGETS;
  it('holds ceilings and floors at their limit inclusive', () => {
    expect(verdict(1.5, cpuPost)).toBe('met');
    expect(verdict(1.51, cpuPost)).toBe('not met');
    expect(verdict(0.5, postThroughput)).toBe('met');
    expect(verdict(0.49, postThroughput)).toBe('not met');
  });
  it('says when nothing was measured', () => {
    expect(verdict(undefined, cpuPost)).toBe('not measured');
    expect(verdict(Number.NaN, cpuPost)).toBe('not measured');
  });
});

describe('evaluateTargets', () => {
  it("marks each of the issue's targets on the embedded store, PostgreSQL beside it", () => {
    const pg = run('bridge (PostgreSQL)', floor.post, floor.get, 105);
    const rows = evaluateTargets(phase({ bridgePg: pg, storeAddedMb: 4 }));
    expect(rows.map((r) => [r.target.key, r.embeddedVerdict, r.postgresVerdict])).toEqual([
      ['cpuPost', 'not met', 'met'],
      ['cpuGet', 'met', 'met'],
      ['postThroughput', 'not met', 'met'],
      ['peakRss', 'not met', 'met'],
      ['storeAddedMb', 'met', 'not measured'],
    ]);
    expect(rows[4].embedded).toBe(4);
  });

  it('leaves the store target unmeasured without the store phase, and PostgreSQL without a server', () => {
    const rows = evaluateTargets(phase());
    expect(rows.find((r) => r.target.key === 'storeAddedMb')?.embeddedVerdict).toBe('not measured');
    expect(rows.every((r) => r.postgresVerdict === 'not measured')).toBe(true);
  });
});

describe('the durable floor', () => {
  it('is held to the CPU and throughput targets, against the bare proxy', () => {
    const verdicts = durableFloorVerdicts(phase({ durableFloor }));
    expect(verdicts.map((v) => [v.target.key, v.verdict])).toEqual([
      ['cpuPost', 'not met'],
      ['cpuGet', 'met'],
      ['postThroughput', 'met'],
    ]);
    expect(verdicts[0].value).toBeCloseTo(1.6);
    expect(verdicts[0].range[0]).toBeCloseTo(1.6);
    expect(verdicts[0].range[1]).toBeCloseTo(1.6);
    expect(verdicts[2].value).toBeCloseTo(0.6);
  });

  it('has no verdicts without its figures', () => {
    expect(durableFloorVerdicts(phase())).toEqual([]);
  });

  it('shows its figures, its ratios to the bare proxy, the bridge over it, and its verdicts', () => {
    const text = formatProxyPhase(phase({ durableFloor })).join('\n');
    expect(text).toMatch(
      /\| durable floor \| 1\.60 \| 0\.550 \| 600 \| 1900 \| 1\.00 \| 1\.00 \| 120 \| 0\/0 \|/,
    );
    expect(text).toContain('| durable floor / floor | 1.60× | 1.10× | 0.60× | 0.95× |  |  | 1.20× |  |');
    // 2/1.6, 2.2/1.76, 1.8/1.44: 1.25× in every pair; RSS 150/120.
    expect(text).toContain(
      '| bridge (embedded store) / durable floor | 1.25× | 1.00× | 0.67× | 0.95× |  |  | 1.25× |  |',
    );
    expect(text).toContain('promises require (2 of 3 met)');
    expect(text).toContain("| CPU per POST /Users | ≤ 1.5× the floor's | 1.60× not met |");
    expect(text).toContain("| POST /Users throughput | ≥ 0.5× the floor's at 16 clients | 0.60× met |");
    // The bridge's own targets stay stated against the bare proxy.
    expect(text).toContain("| CPU per POST /Users | ≤ 1.5× the floor's | 2.00× not met | — |");
    expect(proxySummary(phase({ durableFloor }))).toContain('durable floor / floor');
  });

  it('leaves the section as it was without its figures', () => {
    const text = formatProxyPhase(phase()).join('\n');
    expect(text).not.toContain('durable floor');
    expect(text).not.toContain('promises require (');
  });
});

describe('storeAddedMb', () => {
  it('is the difference of the medians of ready RSS with and without users', () => {
    expect(storeAddedMb([110, 100, 104], [90, 95, 91])).toBe(104 - 91);
  });
});

describe('formatProxyPhase', () => {
  it('shows every target, the ratios and the verdicts, and why PostgreSQL is missing', () => {
    const text = formatProxyPhase(
      phase({ pgSkipped: 'no PostgreSQL server answered', storeAddedMb: 12.5, storeUsers: 100_000 }),
    ).join('\n');
    expect(text).toContain(
      '| bridge (embedded store) / floor | 2.00× | 1.10× | 0.40× | 0.90× |  |  | 1.50× |  |',
    );
    expect(text).toContain("| CPU per POST /Users | ≤ 1.5× the floor's | 2.00× not met | — |");
    expect(text).toContain(
      "| POST /Users throughput | ≥ 0.5× the floor's at 16 clients | 0.40× not met | — |",
    );
    expect(text).toContain('| RSS that 100,000 stored users add at ready | ≤ 10 MB | 12.50 MB not met | — |');
    expect(text).toContain('PostgreSQL: not measured (no PostgreSQL server answered).');
    expect(text).toContain('1 of 5 met on the embedded store');
    // Upstream calls per POST show a read-back.
    expect(text).toMatch(
      /\| bridge \(embedded store\) \| 2\.00 \| 0\.550 \| 400 \| 1800 \| 2\.00 \| 1\.00 \| 150 \| 0\/0 \|/,
    );
  });

  it('is part of the report and of the terminal summary', () => {
    const results: BenchResults = {
      machine: {
        date: '2026-12-06T00:00:00.000Z',
        host: 'vm',
        nproc: 2,
        cpuModel: 'x',
        node: 'v20',
        memoryGb: 8,
        loadAvgStart: [0, 0, 0],
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
        scaleSizes: [],
        runId: 'r',
      },
      main: [],
      scale: [],
      latency: [],
      notes: [],
      proxy: phase(),
    };
    expect(formatReport(results)).toContain('## The bridge against the bare proxy (16 clients');
    expect(proxySummary(phase())).toContain('bridge (embedded store) / floor');
  });
});
