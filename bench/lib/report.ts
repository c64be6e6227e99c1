// The benchmark report: a markdown file (bench/results/…) and a plain-text summary for the
// terminal. Pure formatting: unit-tested in test/bench.

import type { ProfileSummary } from './profile.js';
import type { AggregateStats, Comparison } from './stats.js';
import { formatStorePhase, type StorePhaseResult } from './store-phase.js';
import { formatProxyPhase, type ProxyPhaseResult, proxySummary } from './targets.js';

export interface MachineInfo {
  /** ISO timestamp of the start of the run. */
  date: string;
  host: string;
  nproc: number;
  cpuModel: string;
  node: string;
  memoryGb: number;
  loadAvgStart: number[];
  loadAvgEnd?: number[];
}

export interface BenchConfig {
  quick: boolean;
  durationS: number;
  rounds: number;
  concurrency: number;
  latencyConcurrency: number;
  upstreamLatencyMs: number;
  /** Fixed arrival rate of the paced latency rounds (0: none). */
  pacedRate: number;
  store: string;
  logLevel: string;
  scaleSizes: number[];
  runId: string;
}

export interface ScenarioResult {
  key: string;
  title: string;
  floorCalls: string;
  comparison: Comparison;
}

export interface ScaleRow {
  title: string;
  users: number;
  stats: AggregateStats;
}

export interface BenchResults {
  machine: MachineInfo;
  config: BenchConfig;
  main: ScenarioResult[];
  scale: ScaleRow[];
  latency: ScenarioResult[];
  /** The latency phase at a fixed arrival rate (config.pacedRate). */
  latencyPaced?: ScenarioResult[];
  profile?: {
    summary: ProfileSummary;
    durationS: number;
    file: string;
    /** Requests the profiled bridge served, when all were of one kind (`scenario`). */
    requests?: number;
    scenario?: string;
  };
  /** Phase "proxy": the bridge against the bare-proxy floor process, and the cost targets. */
  proxy?: ProxyPhaseResult;
  /** Phase "store": the embedded store at scale (start time, RSS). */
  storeScale?: StorePhaseResult;
  /** A/B of two builds: comparison.bridge is this checkout (B), comparison.floor the baseline (A). */
  ab?: ScenarioResult[];
  abBaseline?: string;
  notes: string[];
  wallSeconds?: number;
}

/** Minimum rate at 30 ms upstream latency (Entra's gallery requirement). */
export const MIN_RPS_AT_30MS = 25;

// ---------------------------------------------------------------- number formatting

/** Fixed decimals chosen by magnitude, so small latencies keep their precision. '—' for NaN. */
export function fmt(
  n: number | undefined,
  kind: 'ms' | 'rps' | 'ratio' | 'cpu' | 'calls' | 'mb' | 'int',
): string {
  if (n === undefined || !Number.isFinite(n)) return '—';
  switch (kind) {
    case 'ms':
      return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
    case 'rps':
      return n >= 100 ? n.toFixed(0) : n.toFixed(1);
    case 'ratio':
      return `${n.toFixed(2)}×`;
    case 'cpu':
      return n >= 10 ? n.toFixed(1) : n >= 1 ? n.toFixed(2) : n.toFixed(3);
    case 'calls':
      return n.toFixed(2);
    case 'mb':
      return n.toFixed(0);
    case 'int':
      return Math.round(n).toLocaleString('en-US');
  }
}

/** "+1.23" style for added latency. */
export function fmtSigned(n: number): string {
  if (!Number.isFinite(n)) return '—';
  const s = fmt(n, 'ms');
  return n >= 0 ? `+${s}` : s;
}

export function errorsCell(stats: AggregateStats): string {
  if (stats.errors === 0) return '0';
  const kinds = Object.entries(stats.errorKinds)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}×${v}`)
    .join(', ');
  return kinds ? `${stats.errors} (${kinds})` : String(stats.errors);
}

export function storeCell(stats: AggregateStats): string {
  if (stats.storePerRequest === undefined) return '—';
  const parts = Object.entries(stats.storeByOperation ?? {})
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${fmt(v, 'calls')}`);
  return `${fmt(stats.storePerRequest, 'calls')}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

export function callsCell(stats: AggregateStats): string {
  const parts = Object.entries(stats.upstreamByAction)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${fmt(v, 'calls')}`);
  return parts.length ? parts.join(', ') : '0';
}

// ---------------------------------------------------------------- tables

/** A GitHub markdown table; `align` per column: 'l' or 'r' (default 'r' except the first). */
export function mdTable(headers: string[], rows: string[][], align?: ('l' | 'r')[]): string {
  const a = align ?? headers.map((_, i) => (i === 0 ? 'l' : 'r'));
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const line = (cells: string[]) => `| ${cells.map(esc).join(' | ')} |`;
  const rule = `|${a
    .map((x) => (x === 'r' ? '---:' : ':---'))
    .map((x) => ` ${x} `)
    .join('|')}|`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

/** A plain-text table with padded columns (for the terminal). */
export function textTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export const SUMMARY_HEADERS = [
  'Scenario',
  'Bridge req/s',
  'Floor req/s',
  'Thru ratio',
  'Bridge p50 ms',
  'Floor p50 ms',
  'Bridge p99 ms',
  'Floor p99 ms',
  'Bridge CPU ms/req',
  'Floor CPU ms/req',
  'CPU ratio',
  'Errors b/f',
];

export function summaryRows(results: readonly ScenarioResult[]): string[][] {
  return results.map(({ title, comparison: c }) => [
    title,
    fmt(c.bridge.throughput, 'rps'),
    fmt(c.floor.throughput, 'rps'),
    fmt(c.ratio.throughput, 'ratio'),
    fmt(c.bridge.p50Ms, 'ms'),
    fmt(c.floor.p50Ms, 'ms'),
    fmt(c.bridge.p99Ms, 'ms'),
    fmt(c.floor.p99Ms, 'ms'),
    fmt(c.bridge.cpuPerRequestMs, 'cpu'),
    fmt(c.floor.cpuPerRequestMs, 'cpu'),
    fmt(c.ratio.cpuPerRequest, 'ratio'),
    `${c.bridge.errors}/${c.floor.errors}`,
  ]);
}

export const LATENCY_HEADERS = [
  'Scenario',
  'Bridge req/s',
  'Floor req/s',
  'Bridge p50',
  'Floor p50',
  'Added p50',
  'Bridge p99',
  'Floor p99',
  'Added p99',
  'Errors b/f',
  `≥${MIN_RPS_AT_30MS} req/s, 0 errors`,
];

export function latencyRows(results: readonly ScenarioResult[]): string[][] {
  return results.map(({ title, comparison: c }) => [
    title,
    fmt(c.bridge.throughput, 'rps'),
    fmt(c.floor.throughput, 'rps'),
    fmt(c.bridge.p50Ms, 'ms'),
    fmt(c.floor.p50Ms, 'ms'),
    fmtSigned(c.added.p50Ms),
    fmt(c.bridge.p99Ms, 'ms'),
    fmt(c.floor.p99Ms, 'ms'),
    fmtSigned(c.added.p99Ms),
    `${c.bridge.errors}/${c.floor.errors}`,
    meetsLatencyTarget(c.bridge) ? 'yes' : 'NO',
  ]);
}

export const PACED_HEADERS = [
  'Scenario',
  'Bridge req/s',
  'Bridge p50',
  'Floor p50',
  'Added p50',
  'Bridge p99',
  'Floor p99',
  'Added p99',
  'Bridge CPU ms/req',
  'Errors b/f',
];

export function pacedRows(results: readonly ScenarioResult[]): string[][] {
  return results.map(({ title, comparison: c }) => [
    title,
    fmt(c.bridge.throughput, 'rps'),
    fmt(c.bridge.p50Ms, 'ms'),
    fmt(c.floor.p50Ms, 'ms'),
    fmtSigned(c.added.p50Ms),
    fmt(c.bridge.p99Ms, 'ms'),
    fmt(c.floor.p99Ms, 'ms'),
    fmtSigned(c.added.p99Ms),
    fmt(c.bridge.cpuPerRequestMs, 'cpu'),
    `${c.bridge.errors}/${c.floor.errors}`,
  ]);
}

export function meetsLatencyTarget(stats: AggregateStats): boolean {
  return stats.errors === 0 && stats.throughput >= MIN_RPS_AT_30MS;
}

export const SCALE_HEADERS = [
  'Lookup',
  'Users upstream',
  'req/s',
  'p50 ms',
  'p99 ms',
  'Upstream calls/req',
  'By action',
  'Store ops/req',
  'Errors',
];

export function scaleRows(rows: readonly ScaleRow[]): string[][] {
  return rows.map(({ title, users, stats }) => [
    title,
    fmt(users, 'int'),
    fmt(stats.throughput, 'rps'),
    fmt(stats.p50Ms, 'ms'),
    fmt(stats.p99Ms, 'ms'),
    fmt(stats.upstreamPerRequest, 'calls'),
    callsCell(stats),
    storeCell(stats),
    errorsCell(stats),
  ]);
}

/** For each lookup: the largest size's figures over the smallest's (1.00× = no growth). */
export function scaleGrowth(
  rows: readonly ScaleRow[],
): { title: string; p50: number; p99: number; calls: number }[] {
  const titles = [...new Set(rows.map((r) => r.title))];
  return titles.flatMap((title) => {
    const sized = rows.filter((r) => r.title === title).sort((a, b) => a.users - b.users);
    if (sized.length < 2) return [];
    const small = sized[0].stats;
    const large = sized[sized.length - 1].stats;
    return [
      {
        title,
        p50: large.p50Ms / small.p50Ms,
        p99: large.p99Ms / small.p99Ms,
        calls:
          small.upstreamPerRequest > 0 ? large.upstreamPerRequest / small.upstreamPerRequest : Number.NaN,
      },
    ];
  });
}

export const AB_HEADERS = [
  'Scenario',
  'A req/s',
  'B req/s',
  'Thru B/A',
  'A p50 ms',
  'B p50 ms',
  'A CPU ms/req',
  'B CPU ms/req',
  'CPU B/A',
  'Upstream calls/req A/B',
  'Store ops/req A/B',
  'Errors A/B',
];

export function abRows(results: readonly ScenarioResult[]): string[][] {
  return results.map(({ title, comparison: c }) => [
    title,
    fmt(c.floor.throughput, 'rps'),
    fmt(c.bridge.throughput, 'rps'),
    fmt(c.ratio.throughput, 'ratio'),
    fmt(c.floor.p50Ms, 'ms'),
    fmt(c.bridge.p50Ms, 'ms'),
    fmt(c.floor.cpuPerRequestMs, 'cpu'),
    fmt(c.bridge.cpuPerRequestMs, 'cpu'),
    fmt(c.ratio.cpuPerRequest, 'ratio'),
    `${fmt(c.floor.upstreamPerRequest, 'calls')}/${fmt(c.bridge.upstreamPerRequest, 'calls')}`,
    `${fmt(c.floor.storePerRequest, 'calls')}/${fmt(c.bridge.storePerRequest, 'calls')}`,
    `${c.floor.errors}/${c.bridge.errors}`,
  ]);
}

function detailRows(results: readonly ScenarioResult[]): string[][] {
  return results.flatMap(({ title, floorCalls, comparison: c }) => [
    [
      title,
      'bridge',
      String(c.bridge.rounds),
      fmt(c.bridge.requests, 'int'),
      fmt(c.bridge.upstreamPerRequest, 'calls'),
      callsCell(c.bridge),
      storeCell(c.bridge),
      fmt(c.bridge.peakRssMb, 'mb'),
      errorsCell(c.bridge),
    ],
    [
      title,
      `floor (${floorCalls})`,
      String(c.floor.rounds),
      fmt(c.floor.requests, 'int'),
      fmt(c.floor.upstreamPerRequest, 'calls'),
      callsCell(c.floor),
      '—',
      '—',
      errorsCell(c.floor),
    ],
  ]);
}

const DETAIL_HEADERS = [
  'Scenario',
  'Side',
  'Rounds',
  'Requests',
  'Upstream calls/req',
  'By action',
  'Store ops/req',
  'Bridge peak RSS MB',
  'Errors',
];
const DETAIL_ALIGN: ('l' | 'r')[] = ['l', 'l', 'r', 'r', 'r', 'l', 'l', 'r', 'l'];

/**
 * `<date>-<host>.md` for a full run; a quick run or a partial one (other phases, some scenarios)
 * gets a suffix, so it never overwrites the day's full report.
 */
export function reportFileName(
  machine: MachineInfo,
  variant: { quick: boolean; phases?: string[]; partial?: boolean },
): string {
  const safeHost = machine.host.replace(/[^A-Za-z0-9._-]+/g, '-');
  const parts: string[] = [];
  if (variant.quick) parts.push('quick');
  if (variant.partial && variant.phases) parts.push(...variant.phases);
  const suffix = parts.map((p) => `-${p.replace(/[^A-Za-z0-9]+/g, '')}`).join('');
  return `${machine.date.slice(0, 10)}-${safeHost}${suffix}.md`;
}

export function formatReport(r: BenchResults): string {
  const { machine: m, config: c } = r;
  const out: string[] = [];
  const load = (l?: number[]) => (l ? l.map((x) => x.toFixed(2)).join(' / ') : '—');
  out.push(
    `# volc-scim-bridge benchmark — ${m.date.slice(0, 10)} on ${m.host}${c.quick ? ' (QUICK smoke run: not representative)' : ''}`,
  );
  out.push('');
  out.push(
    mdTable(
      ['', ''],
      [
        ['Date', m.date],
        ['Machine', `${m.host}: ${m.nproc} CPUs (nproc), ${m.cpuModel}, ${m.memoryGb.toFixed(0)} GB RAM`],
        ['Node', m.node],
        ['Load average at start (1/5/15 min)', load(m.loadAvgStart)],
        ['Load average at end', load(m.loadAvgEnd)],
        ['Store', c.store],
        ['Bridge LOG_LEVEL', c.logLevel],
        [
          'Rounds',
          `${c.rounds} bridge + ${c.rounds} floor per scenario, interleaved, ${c.durationS} s each (after a warm-up)`,
        ],
        [
          'Concurrency',
          `${c.concurrency} (main, scale); ${c.latencyConcurrency} with ${c.upstreamLatencyMs} ms upstream latency`,
        ],
        ['Run id', c.runId],
        ...(r.wallSeconds !== undefined ? [['Wall time', `${r.wallSeconds.toFixed(0)} s`]] : []),
      ],
      ['l', 'l'],
    ),
  );
  out.push('');
  out.push(
    'Bridge: `node dist/main.js`; emulator: `node dist/emulator/main.js`; both separate processes on loopback, ' +
      'driven by a closed-loop load generator (undici) in the runner. In the sections below the proxy phase, ' +
      'the floor is the same upstream calls the bridge ' +
      'makes for the request, made directly against the emulator by our signed `CloudIdentityClient` at the same ' +
      'concurrency. Every figure is the median over rounds; ratios and added latency are medians over ' +
      'interleaved (bridge, floor) pairs. CPU per request: the bridge process (utime+stime from /proc) for the ' +
      'bridge, the runner process (`process.cpuUsage()`) for the floor. Errors: non-2xx answers plus socket ' +
      'and client errors, summed over all rounds. All processes share one machine, so the floor includes the ' +
      "emulator's own cost too.",
  );
  out.push('');
  if (r.proxy) out.push(...formatProxyPhase(r.proxy));
  if (r.main.length > 0) {
    out.push(`## Throughput, latency, CPU (concurrency ${c.concurrency}, no added upstream latency)`);
    out.push('');
    out.push(mdTable(SUMMARY_HEADERS, summaryRows(r.main)));
    out.push('');
    out.push(mdTable(DETAIL_HEADERS, detailRows(r.main), DETAIL_ALIGN));
    out.push('');
  }
  if (r.scale.length > 0) {
    out.push(`## Scale: lookups with ${c.scaleSizes.map((s) => fmt(s, 'int')).join(' and ')} users upstream`);
    out.push('');
    out.push(mdTable(SCALE_HEADERS, scaleRows(r.scale), ['l', 'r', 'r', 'r', 'r', 'r', 'l', 'l', 'l']));
    out.push('');
    const growth = scaleGrowth(r.scale);
    if (growth.length > 0) {
      out.push('Largest size over smallest (1.00× = no growth):');
      out.push('');
      out.push(
        mdTable(
          ['Lookup', 'p50', 'p99', 'Upstream calls/req'],
          growth.map((g) => [g.title, fmt(g.p50, 'ratio'), fmt(g.p99, 'ratio'), fmt(g.calls, 'ratio')]),
        ),
      );
      out.push('');
    }
  }
  if (r.latency.length > 0) {
    out.push(`## ${c.upstreamLatencyMs} ms upstream latency, ${c.latencyConcurrency} concurrent clients`);
    out.push('');
    out.push(mdTable(LATENCY_HEADERS, latencyRows(r.latency)));
    out.push('');
    const ok = r.latency.every((s) => meetsLatencyTarget(s.comparison.bridge));
    out.push(
      ok
        ? `Every scenario sustained at least ${MIN_RPS_AT_30MS} req/s with zero errors.`
        : `**Target missed:** not every scenario sustained ${MIN_RPS_AT_30MS} req/s with zero errors.`,
    );
    out.push('');
    out.push(mdTable(DETAIL_HEADERS, detailRows(r.latency), DETAIL_ALIGN));
    out.push('');
  }
  if (r.latencyPaced && r.latencyPaced.length > 0) {
    out.push(`### The same at a steady ${c.pacedRate} req/s (${c.upstreamLatencyMs} ms upstream latency)`);
    out.push('');
    out.push(
      `With ${c.latencyConcurrency} clients and no pause, the bridge runs at saturation and the added latency above ` +
        `is mostly queueing for its CPU. Here requests start on a fixed schedule of ${c.pacedRate} per second ` +
        "(Entra's pace), so each one's latency is the bridge's own cost on top of the upstream calls.",
    );
    out.push('');
    out.push(mdTable(PACED_HEADERS, pacedRows(r.latencyPaced)));
    out.push('');
  }
  if (r.ab && r.ab.length > 0) {
    out.push(`## A/B: baseline build (A) against this checkout (B), concurrency ${c.concurrency}`);
    out.push('');
    out.push(`${r.abBaseline ?? ''}. Medians of ${c.rounds} interleaved rounds; ratios are B/A over pairs.`);
    out.push('');
    out.push(mdTable(AB_HEADERS, abRows(r.ab)));
    out.push('');
  }
  if (r.storeScale) out.push(...formatStorePhase(r.storeScale));
  if (r.profile) {
    const p = r.profile.summary;
    out.push('## Profile of the bridge under load');
    out.push('');
    out.push(
      `\`node --cpu-prof\` on the bridge while ${r.profile.scenario ? `\`${r.profile.scenario}\`` : 'every scenario'} ran for ${r.profile.durationS} s ` +
        `(${p.busyMs.toFixed(0)} ms busy, ${p.idleMs.toFixed(0)} ms idle). Profile: \`${r.profile.file}\`.`,
    );
    out.push('');
    out.push(
      'By component: time in V8 builtins and Node core (syscalls, crypto, streams) charged to the library or ' +
        'bridge code that called them; what remains under "node …" ran with no such caller on the stack ' +
        '(HTTP parsing, socket writes on uncork, timers):',
    );
    out.push('');
    const n = r.profile.requests;
    if (n) {
      out.push(
        `${fmt(n, 'int')} requests, all \`${r.profile.scenario}\`: ${fmt(p.busyMs / n, 'cpu')} ms of main-thread ` +
          'time each (time blocked in a synchronous call such as fsync counts, as it holds every other request up).',
      );
      out.push('');
    }
    out.push(
      mdTable(
        ['Component', 'ms', ...(n ? ['ms per request'] : []), '% of busy'],
        p.components.map((e) => [
          e.name,
          e.ms.toFixed(0),
          ...(n ? [fmt(e.ms / n, 'cpu')] : []),
          e.pct.toFixed(1),
        ]),
      ),
    );
    out.push('');
    out.push('Self time by category (where the CPU actually was):');
    out.push('');
    out.push(
      mdTable(
        ['Category', 'ms', '% of busy'],
        p.categories.map((e) => [e.name, e.ms.toFixed(0), e.pct.toFixed(1)]),
      ),
    );
    out.push('');
    out.push('Top functions by self time:');
    out.push('');
    out.push(
      mdTable(
        ['Function', 'ms', '% of busy'],
        p.topSelf.map((e) => [e.name, e.ms.toFixed(0), e.pct.toFixed(1)]),
      ),
    );
    out.push('');
    out.push("The bridge's own functions by inclusive time (callees included):");
    out.push('');
    out.push(
      mdTable(
        ['Function', 'ms', '% of busy'],
        p.topInclusive.map((e) => [e.name, e.ms.toFixed(0), e.pct.toFixed(1)]),
      ),
    );
    out.push('');
  }
  if (r.notes.length > 0) {
    out.push('## Notes');
    out.push('');
    for (const n of r.notes) out.push(`- ${n}`);
    out.push('');
  }
  return out.join('\n');
}

/** What the runner prints at the end. */
export function formatSummary(r: BenchResults): string {
  const out: string[] = [];
  const section = (title: string, table: string) => out.push('', title, table);
  if (r.proxy) out.push('', proxySummary(r.proxy));
  if (r.main.length > 0) {
    section(
      `Main (concurrency ${r.config.concurrency}, medians of ${r.config.rounds} interleaved rounds):`,
      textTable(SUMMARY_HEADERS, summaryRows(r.main)),
    );
  }
  if (r.scale.length > 0) section('Scale:', textTable(SCALE_HEADERS, scaleRows(r.scale)));
  if (r.latency.length > 0) {
    section(
      `${r.config.upstreamLatencyMs} ms upstream latency, ${r.config.latencyConcurrency} clients:`,
      textTable(LATENCY_HEADERS, latencyRows(r.latency)),
    );
  }
  if (r.latencyPaced && r.latencyPaced.length > 0) {
    section(
      `${r.config.upstreamLatencyMs} ms upstream latency, a steady ${r.config.pacedRate} req/s:`,
      textTable(PACED_HEADERS, pacedRows(r.latencyPaced)),
    );
  }
  if (r.ab && r.ab.length > 0)
    section('A/B (A = baseline build, B = this checkout):', textTable(AB_HEADERS, abRows(r.ab)));
  return out.join('\n').trim();
}
