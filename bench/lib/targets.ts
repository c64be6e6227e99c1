// Phase "proxy" of `npm run bench`, the pure part: the bridge against the floor processes
// (bench/floor/), their figures, the ratios and the cost targets: the bridge's, held against the bare
// proxy, and the same targets held to the durable floor, which does only the work the bridge's promises
// require of any design (could any design that keeps that work meet them?). No I/O: unit-tested in test/bench.
import { fmt, mdTable, textTable } from './report.js';
import { type AggregateStats, aggregate, median, pairedRatio, type RoundStats } from './stats.js';

/** What one target (a bridge, or the floor) measured in the phase. */
export interface TargetRun {
  label: string;
  /** Rounds of POST /Users and of GET /Users/{id}, in the order they ran (interleaved with the others'). */
  post: RoundStats[];
  get: RoundStats[];
  postErrors: Record<string, number>;
  getErrors: Record<string, number>;
  /** VmHWM after all rounds (the same load on every target). */
  peakRssMb: number;
}

export interface ProxyPhaseResult {
  concurrency: number;
  rounds: number;
  durationS: number;
  bridge: TargetRun;
  /** The bare proxy: the floor the targets are stated against. */
  floor: TargetRun;
  /**
   * The durable floor: the bare proxy plus the store's two commits per create, a store read per GET
   * and an access-log line per request (bench/floor/durable.ts).
   */
  durableFloor?: TargetRun;
  /** The bridge on PostgreSQL, when a server answered. */
  bridgePg?: TargetRun;
  /** Why there are no PostgreSQL figures. */
  pgSkipped?: string;
  /** RSS at ready with the store phase's users over RSS at ready with an empty store, in MB. */
  storeAddedMb?: number;
  /** Users in the store phase's store (for storeAddedMb). */
  storeUsers?: number;
}

export interface Ratios {
  cpuPost: number;
  cpuGet: number;
  postThroughput: number;
  getThroughput: number;
  peakRss: number;
}

/**
 * bridge/floor (or any target over another): medians over interleaved round pairs for CPU and
 * throughput; peak over peak for RSS.
 */
export function proxyRatios(bridge: TargetRun, floor: TargetRun): Ratios {
  const ratio = (b: RoundStats[], f: RoundStats[], pick: (r: RoundStats) => number) =>
    pairedRatio(b.map(pick), f.map(pick));
  return {
    cpuPost: ratio(bridge.post, floor.post, (r) => r.cpuPerRequestMs),
    cpuGet: ratio(bridge.get, floor.get, (r) => r.cpuPerRequestMs),
    postThroughput: ratio(bridge.post, floor.post, (r) => r.throughput),
    getThroughput: ratio(bridge.get, floor.get, (r) => r.throughput),
    peakRss: floor.peakRssMb > 0 ? bridge.peakRssMb / floor.peakRssMb : Number.NaN,
  };
}

type PairedKey = Exclude<keyof Ratios, 'peakRss'>;

/** Targets on a ratio of interleaved pairs (CPU and throughput), which have a range. */
const isPaired = (key: Target['key']): key is PairedKey => key !== 'storeAddedMb' && key !== 'peakRss';

/** Lowest and highest bridge/floor ratio over the interleaved pairs: how far the rounds spread. */
export function proxyRatioRanges(bridge: TargetRun, floor: TargetRun): Record<PairedKey, [number, number]> {
  const range = (b: RoundStats[], f: RoundStats[], pick: (r: RoundStats) => number): [number, number] => {
    const ratios: number[] = [];
    for (let i = 0; i < Math.min(b.length, f.length); i++) {
      const x = pick(b[i]) / pick(f[i]);
      if (Number.isFinite(x)) ratios.push(x);
    }
    return ratios.length ? [Math.min(...ratios), Math.max(...ratios)] : [Number.NaN, Number.NaN];
  };
  return {
    cpuPost: range(bridge.post, floor.post, (r) => r.cpuPerRequestMs),
    cpuGet: range(bridge.get, floor.get, (r) => r.cpuPerRequestMs),
    postThroughput: range(bridge.post, floor.post, (r) => r.throughput),
    getThroughput: range(bridge.get, floor.get, (r) => r.throughput),
  };
}

/** "8.06×", with the pairs' range when there was more than one pair and they differ: "8.06× (6.80–9.10)". */
export function ratioText(value: number, range?: [number, number]): string {
  const base = fmt(value, 'ratio');
  if (!range || !Number.isFinite(range[0]) || !Number.isFinite(value)) return base;
  const [low, high] = range.map((x) => x.toFixed(2));
  return low === high ? base : `${base} (${low}–${high})`;
}

export interface Target {
  key: keyof Ratios | 'storeAddedMb';
  what: string;
  /** The limit, a ratio (bridge/floor) or MB for storeAddedMb. */
  limit: number;
  /** 'max': the value must be at most the limit; 'min': at least. */
  bound: 'max' | 'min';
}

/** The cost targets of the write-path redesign, held against the bare proxy on the embedded store. */
export const COST_TARGETS: readonly Target[] = [
  { key: 'cpuPost', what: 'CPU per POST /Users', limit: 1.5, bound: 'max' },
  { key: 'cpuGet', what: 'CPU per GET /Users/{id}', limit: 1.2, bound: 'max' },
  { key: 'postThroughput', what: 'POST /Users throughput', limit: 0.5, bound: 'min' },
  { key: 'peakRss', what: 'Peak RSS under the same load', limit: 1.1, bound: 'max' },
  { key: 'storeAddedMb', what: 'RSS that stored users add at ready', limit: 10, bound: 'max' },
];

export type Verdict = 'met' | 'not met' | 'not measured';

export function verdict(value: number | undefined, target: Target): Verdict {
  if (value === undefined || !Number.isFinite(value)) return 'not measured';
  const ok = target.bound === 'max' ? value <= target.limit : value >= target.limit;
  return ok ? 'met' : 'not met';
}

export interface TargetRow {
  target: Target;
  embedded: number | undefined;
  /** Lowest and highest over the interleaved pairs (CPU and throughput ratios only). */
  embeddedRange?: [number, number];
  postgresRange?: [number, number];
  embeddedVerdict: Verdict;
  postgres: number | undefined;
  postgresVerdict: Verdict;
}

/** Each target with the embedded store's value, the PostgreSQL one beside it, and whether it is met. */
export function evaluateTargets(r: ProxyPhaseResult): TargetRow[] {
  const embedded = proxyRatios(r.bridge, r.floor);
  const postgres = r.bridgePg ? proxyRatios(r.bridgePg, r.floor) : undefined;
  const embeddedRanges = proxyRatioRanges(r.bridge, r.floor);
  const postgresRanges = r.bridgePg ? proxyRatioRanges(r.bridgePg, r.floor) : undefined;
  return COST_TARGETS.map((target) => {
    const e = target.key === 'storeAddedMb' ? r.storeAddedMb : embedded[target.key];
    const p = target.key === 'storeAddedMb' ? undefined : postgres?.[target.key];
    return {
      target,
      embedded: e,
      ...(isPaired(target.key) ? { embeddedRange: embeddedRanges[target.key] } : {}),
      ...(isPaired(target.key) && postgresRanges ? { postgresRange: postgresRanges[target.key] } : {}),
      embeddedVerdict: verdict(e, target),
      postgres: p,
      postgresVerdict: verdict(p, target),
    };
  });
}

export interface FloorVerdict {
  target: Target;
  /** durable floor / bare proxy, and the lowest and highest pair. */
  value: number;
  range: [number, number];
  verdict: Verdict;
}

/**
 * The CPU and throughput targets held to the durable floor itself (durable floor / bare proxy):
 * whether the work the bridge's promises require, and nothing else, would meet them. Empty without its figures.
 */
export function durableFloorVerdicts(r: ProxyPhaseResult): FloorVerdict[] {
  if (!r.durableFloor) return [];
  const ratios = proxyRatios(r.durableFloor, r.floor);
  const ranges = proxyRatioRanges(r.durableFloor, r.floor);
  return COST_TARGETS.flatMap((target) =>
    isPaired(target.key)
      ? [
          {
            target,
            value: ratios[target.key],
            range: ranges[target.key],
            verdict: verdict(ratios[target.key], target),
          },
        ]
      : [],
  );
}

export function limitText(t: Target, concurrency: number): string {
  const op = t.bound === 'max' ? '≤' : '≥';
  if (t.key === 'storeAddedMb') return `${op} ${t.limit} MB`;
  const at = t.key === 'postThroughput' ? ` at ${concurrency} clients` : '';
  return `${op} ${t.limit}× the floor's${at}`;
}

function valueText(t: Target, v: number | undefined, range?: [number, number]): string {
  if (v === undefined) return '—';
  return t.key === 'storeAddedMb' ? `${fmt(v, 'calls')} MB` : ratioText(v, range);
}

function cell(v: number | undefined, t: Target, verdictText: Verdict, range?: [number, number]): string {
  return verdictText === 'not measured' ? '—' : `${valueText(t, v, range)} ${verdictText}`;
}

interface Figures {
  label: string;
  cpuPost: number;
  cpuGet: number;
  postRps: number;
  getRps: number;
  postCalls: number;
  getCalls: number;
  peakRssMb: number;
  errors: string;
}

function figures(t: TargetRun): Figures {
  const post: AggregateStats = aggregate(t.post, t.postErrors);
  const get: AggregateStats = aggregate(t.get, t.getErrors);
  return {
    label: t.label,
    cpuPost: post.cpuPerRequestMs,
    cpuGet: get.cpuPerRequestMs,
    postRps: post.throughput,
    getRps: get.throughput,
    postCalls: post.upstreamPerRequest,
    getCalls: get.upstreamPerRequest,
    peakRssMb: t.peakRssMb,
    errors: `${post.errors}/${get.errors}`,
  };
}

export const FIGURE_HEADERS = [
  'Target',
  'CPU ms/POST',
  'CPU ms/GET',
  'POST req/s',
  'GET req/s',
  'Upstream calls/POST',
  'Upstream calls/GET',
  'Peak RSS MB',
  'Errors POST/GET',
];

export function figureRows(r: ProxyPhaseResult): string[][] {
  const durable = r.durableFloor;
  const rows = [r.bridge, r.floor, ...(durable ? [durable] : []), ...(r.bridgePg ? [r.bridgePg] : [])]
    .map(figures)
    .map((f) => [
      f.label,
      fmt(f.cpuPost, 'cpu'),
      fmt(f.cpuGet, 'cpu'),
      fmt(f.postRps, 'rps'),
      fmt(f.getRps, 'rps'),
      fmt(f.postCalls, 'calls'),
      fmt(f.getCalls, 'calls'),
      fmt(f.peakRssMb, 'mb'),
      f.errors,
    ]);
  const ratioRow = (label: string, over: TargetRun, under: TargetRun = r.floor) => {
    const q = proxyRatios(over, under);
    const range = proxyRatioRanges(over, under);
    return [
      label,
      ratioText(q.cpuPost, range.cpuPost),
      ratioText(q.cpuGet, range.cpuGet),
      ratioText(q.postThroughput, range.postThroughput),
      ratioText(q.getThroughput, range.getThroughput),
      '',
      '',
      fmt(q.peakRss, 'ratio'),
      '',
    ];
  };
  rows.push(ratioRow(`${r.bridge.label} / floor`, r.bridge));
  if (r.bridgePg) rows.push(ratioRow(`${r.bridgePg.label} / floor`, r.bridgePg));
  if (durable) {
    rows.push(ratioRow(`${durable.label} / floor`, durable));
    rows.push(ratioRow(`${r.bridge.label} / ${durable.label}`, r.bridge, durable));
  }
  return rows;
}

export const TARGET_HEADERS = ['Target', 'Limit', 'Embedded store', 'PostgreSQL (for comparison)'];

export function targetRows(r: ProxyPhaseResult): string[][] {
  return evaluateTargets(r).map((row) => [
    row.target.key === 'storeAddedMb' && r.storeUsers !== undefined
      ? `RSS that ${fmt(r.storeUsers, 'int')} stored users add at ready`
      : row.target.what,
    limitText(row.target, r.concurrency),
    cell(row.embedded, row.target, row.embeddedVerdict, row.embeddedRange),
    cell(row.postgres, row.target, row.postgresVerdict, row.postgresRange),
  ]);
}

export const DURABLE_HEADERS = ['Target', 'Limit', 'Durable floor / bare proxy'];

export function durableRows(r: ProxyPhaseResult): string[][] {
  return durableFloorVerdicts(r).map((v) => [
    v.target.what,
    limitText(v.target, r.concurrency),
    `${ratioText(v.value, v.range)} ${v.verdict}`,
  ]);
}

/** The sentence before the durable floor's verdicts. */
function durableLead(r: ProxyPhaseResult): string {
  const verdicts = durableFloorVerdicts(r);
  const met = verdicts.filter((v) => v.verdict === 'met').length;
  return (
    "The same CPU and throughput targets held to the durable floor itself, which does only the work the bridge's " +
    `promises require (${met} of ${verdicts.length} met): a target it misses cannot be met by a bridge that does that ` +
    'work with the same store, logger and CloudIdentity client, whatever else it leaves out.'
  );
}

/** The report's section for the phase. */
export function formatProxyPhase(r: ProxyPhaseResult): string[] {
  const met = evaluateTargets(r).filter((t) => t.embeddedVerdict === 'met').length;
  const measured = evaluateTargets(r).filter((t) => t.embeddedVerdict !== 'not measured').length;
  return [
    `## The bridge against the bare proxy (${r.concurrency} clients, no upstream latency)`,
    '',
    'The floor is a separate process (`bench/floor/`): it maps SCIM `POST /Users` to `CreateUser` and ' +
      '`GET /Users/{id}` to `GetUser`, signs with the same CloudIdentity client as the bridge (`dist/volcengine`) ' +
      'and forwards; no store, no audit, no validation beyond the mapping. All run against the same emulator, ' +
      `one target at a time, in ${r.rounds} interleaved rounds of ${r.durationS} s per operation. CPU per request ` +
      "is the target process's utime+stime over the round; every figure is the median over rounds, ratios the " +
      'median over interleaved (bridge, floor) pairs, with the lowest and highest pair in parentheses; a target ' +
      'is judged on the median. Peak RSS is VmHWM after all rounds.',
    '',
    ...(r.durableFloor
      ? [
          "The durable floor is the same server (`FLOOR_MODE=durable`) plus only the work the bridge's promises require of " +
            "any design, done by the bridge's own built modules: its embedded store (`openStore`, WAL, " +
            'synchronous=FULL, group commit); per `POST /Users` the pending record with a "create started" audit ' +
            'record committed before `CreateUser`, then the record made ready with the final audit record (two ' +
            "fsync'ed transactions); per `GET /Users/{id}` one store read of the record (`getUserWithGroups`, as " +
            "the bridge's GET) for the UserId; the bearer check; one pino JSON access-log line per request to its " +
            'log file. No SCIM validation, no Express, no metrics, no rate limits, no locks or intents.',
          '',
        ]
      : []),
    mdTable(FIGURE_HEADERS, figureRows(r)),
    '',
    ...(r.pgSkipped ? [`PostgreSQL: not measured (${r.pgSkipped}).`, ''] : []),
    `Cost targets (${met} of ${measured} met on the embedded store):`,
    '',
    mdTable(TARGET_HEADERS, targetRows(r), ['l', 'l', 'r', 'r']),
    '',
    ...(r.durableFloor
      ? [durableLead(r), '', mdTable(DURABLE_HEADERS, durableRows(r), ['l', 'l', 'r']), '']
      : []),
  ];
}

/** What the runner prints for the phase. */
export function proxySummary(r: ProxyPhaseResult): string {
  return [
    `Bridge against the bare proxy (${r.concurrency} clients, medians of ${r.rounds} interleaved rounds):`,
    textTable(FIGURE_HEADERS, figureRows(r)),
    ...(r.pgSkipped ? [`PostgreSQL: not measured (${r.pgSkipped}).`] : []),
    '',
    textTable(TARGET_HEADERS, targetRows(r)),
    ...(r.durableFloor ? ['', durableLead(r), textTable(DURABLE_HEADERS, durableRows(r))] : []),
  ].join('\n');
}

/** Median RSS at ready with a full store minus with an empty one. */
export function storeAddedMb(fullReadyMb: readonly number[], emptyReadyMb: readonly number[]): number {
  return median(fullReadyMb) - median(emptyReadyMb);
}
