// Pure statistics for the benchmark: percentiles of one round, medians over rounds, bridge/floor
// ratios over interleaved rounds. No I/O, no clock: unit-tested in test/bench.

/** What one timed round measured, before any statistics. */
export interface RoundSample {
  /** Completed requests (successes and errors). */
  requests: number;
  /** Non-2xx answers and socket/client errors. */
  errors: number;
  errorKinds: Record<string, number>;
  /** From the first request's start to the last request's end. */
  elapsedMs: number;
  /** Latency of every completed request, in milliseconds. */
  latenciesMs: number[];
  /** CPU time (user + system) of the process under test during the round, in milliseconds. */
  cpuMs: number;
  /** Upstream (emulator) calls made during the round, per Action. */
  upstreamCalls: Record<string, number>;
  /** Peak resident set size of the process under test so far, in KiB (VmHWM); undefined if unknown. */
  peakRssKb?: number;
  /** Store operations the bridge made during the round, per operation (from its /metrics). */
  storeOps?: Record<string, number>;
}

/** One round reduced to the figures the report shows. */
export interface RoundStats {
  requests: number;
  errors: number;
  /** Requests per second. */
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU milliseconds per request. */
  cpuPerRequestMs: number;
  /** Upstream calls per request (all Actions). */
  upstreamPerRequest: number;
  /** Upstream calls per request, per Action. */
  upstreamByAction: Record<string, number>;
  peakRssMb?: number;
  /** Store operations per request (all operations), when known. */
  storePerRequest?: number;
  storeByOperation?: Record<string, number>;
}

/** Medians over rounds (errors and requests are totals: one error anywhere counts). */
export interface AggregateStats {
  rounds: number;
  requests: number;
  errors: number;
  errorKinds: Record<string, number>;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  cpuPerRequestMs: number;
  upstreamPerRequest: number;
  upstreamByAction: Record<string, number>;
  /** Largest over the rounds (VmHWM only grows). */
  peakRssMb?: number;
  storePerRequest?: number;
  storeByOperation?: Record<string, number>;
}

/**
 * Nearest-rank percentile of an ascending array (`p` in 0..100): the smallest value with at least
 * p % of the values at or below it. NaN for an empty array.
 */
export function percentile(sortedAsc: readonly number[], p: number): number {
  if (sortedAsc.length === 0) return Number.NaN;
  if (p <= 0) return sortedAsc[0];
  const rank = Math.ceil((p / 100) * sortedAsc.length);
  return sortedAsc[Math.min(sortedAsc.length, rank) - 1];
}

/** Median (mean of the two middle values for an even count); NaN for none. NaNs are ignored. */
export function median(values: readonly number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function sumValues(record: Readonly<Record<string, number>>): number {
  let total = 0;
  for (const v of Object.values(record)) total += v;
  return total;
}

/** a − b per key (keys of either side; missing counts as 0); zero results are dropped. */
export function diffCounts(
  after: Readonly<Record<string, number>>,
  before: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of new Set([...Object.keys(after), ...Object.keys(before)])) {
    const d = (after[key] ?? 0) - (before[key] ?? 0);
    if (d !== 0) out[key] = d;
  }
  return out;
}

export function roundStats(sample: RoundSample): RoundStats {
  const sorted = [...sample.latenciesMs].sort((a, b) => a - b);
  const n = sample.requests;
  const perRequest = (x: number) => (n > 0 ? x / n : Number.NaN);
  const upstreamByAction: Record<string, number> = {};
  for (const [action, count] of Object.entries(sample.upstreamCalls))
    upstreamByAction[action] = perRequest(count);
  let store: Pick<RoundStats, 'storePerRequest' | 'storeByOperation'> = {};
  if (sample.storeOps) {
    const storeByOperation: Record<string, number> = {};
    for (const [op, count] of Object.entries(sample.storeOps)) storeByOperation[op] = perRequest(count);
    store = { storePerRequest: perRequest(sumValues(sample.storeOps)), storeByOperation };
  }
  return {
    requests: n,
    errors: sample.errors,
    throughput: sample.elapsedMs > 0 ? (n * 1000) / sample.elapsedMs : Number.NaN,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    cpuPerRequestMs: perRequest(sample.cpuMs),
    upstreamPerRequest: perRequest(sumValues(sample.upstreamCalls)),
    upstreamByAction,
    ...(sample.peakRssKb !== undefined ? { peakRssMb: sample.peakRssKb / 1024 } : {}),
    ...store,
  };
}

export function aggregate(
  rounds: readonly RoundStats[],
  errorKinds: Record<string, number> = {},
): AggregateStats {
  const pick = (f: (r: RoundStats) => number) => median(rounds.map(f));
  const actions = new Set(rounds.flatMap((r) => Object.keys(r.upstreamByAction)));
  const upstreamByAction: Record<string, number> = {};
  for (const a of [...actions].sort()) upstreamByAction[a] = pick((r) => r.upstreamByAction[a] ?? 0);
  const rss = rounds.map((r) => r.peakRssMb).filter((x): x is number => x !== undefined);
  let store: Pick<AggregateStats, 'storePerRequest' | 'storeByOperation'> = {};
  const withStore = rounds.filter((r) => r.storePerRequest !== undefined);
  if (withStore.length > 0) {
    const ops = new Set(withStore.flatMap((r) => Object.keys(r.storeByOperation ?? {})));
    const storeByOperation: Record<string, number> = {};
    for (const op of [...ops].sort())
      storeByOperation[op] = median(withStore.map((r) => r.storeByOperation?.[op] ?? 0));
    store = { storePerRequest: median(withStore.map((r) => r.storePerRequest!)), storeByOperation };
  }
  return {
    rounds: rounds.length,
    requests: rounds.reduce((s, r) => s + r.requests, 0),
    errors: rounds.reduce((s, r) => s + r.errors, 0),
    errorKinds,
    throughput: pick((r) => r.throughput),
    p50Ms: pick((r) => r.p50Ms),
    p99Ms: pick((r) => r.p99Ms),
    cpuPerRequestMs: pick((r) => r.cpuPerRequestMs),
    upstreamPerRequest: pick((r) => r.upstreamPerRequest),
    upstreamByAction,
    ...(rss.length > 0 ? { peakRssMb: Math.max(...rss) } : {}),
    ...store,
  };
}

/**
 * Median over interleaved pairs (bridge round i, floor round i) of bridge/floor. Pairing adjacent
 * rounds cancels most of a noisy machine's drift. Pairs with a zero or NaN floor are skipped.
 */
export function pairedRatio(bridge: readonly number[], floor: readonly number[]): number {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(bridge.length, floor.length); i++) {
    if (floor[i] > 0 && Number.isFinite(bridge[i])) ratios.push(bridge[i] / floor[i]);
  }
  return median(ratios);
}

/** Median over interleaved pairs of bridge − floor (e.g. the latency the bridge adds). */
export function pairedDifference(bridge: readonly number[], floor: readonly number[]): number {
  const diffs: number[] = [];
  for (let i = 0; i < Math.min(bridge.length, floor.length); i++) diffs.push(bridge[i] - floor[i]);
  return median(diffs);
}

export function mergeCounts(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

export interface Comparison {
  bridge: AggregateStats;
  floor: AggregateStats;
  /** bridge/floor, median of interleaved pairs */
  ratio: { throughput: number; p50: number; p99: number; cpuPerRequest: number };
  /** bridge − floor in ms, median of interleaved pairs */
  added: { p50Ms: number; p99Ms: number };
}

export function compare(bridgeRounds: readonly RoundStats[], floorRounds: readonly RoundStats[]): Comparison {
  const col = (rounds: readonly RoundStats[], f: (r: RoundStats) => number) => rounds.map(f);
  const ratio = (f: (r: RoundStats) => number) => pairedRatio(col(bridgeRounds, f), col(floorRounds, f));
  const diff = (f: (r: RoundStats) => number) => pairedDifference(col(bridgeRounds, f), col(floorRounds, f));
  return {
    bridge: aggregate(bridgeRounds),
    floor: aggregate(floorRounds),
    ratio: {
      throughput: ratio((r) => r.throughput),
      p50: ratio((r) => r.p50Ms),
      p99: ratio((r) => r.p99Ms),
      cpuPerRequest: ratio((r) => r.cpuPerRequestMs),
    },
    added: { p50Ms: diff((r) => r.p50Ms), p99Ms: diff((r) => r.p99Ms) },
  };
}

const STORE_COUNT = /^scim_bridge_store_operation_duration_seconds_count\{([^}]*)\}\s+(\d+(?:\.\d+)?)/;

/** Prometheus text → store operations per operation name (all outcomes). */
export function parseStoreOps(text: string): Record<string, number> {
  const ops: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = STORE_COUNT.exec(line);
    if (!m) continue;
    const op = /operation="([^"]*)"/.exec(m[1])?.[1] ?? 'unknown';
    ops[op] = (ops[op] ?? 0) + Number(m[2]);
  }
  return ops;
}
