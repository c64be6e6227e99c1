// `npm run bench`: the load benchmark. Starts the standalone emulator, the bridge and the floors
// (bench/floor/: the bare proxy and the durable floor) as separate processes on loopback, drives
// them, and writes bench/results/<date>-<host>.md plus latest.md.
//
// Environment:
//   BENCH_QUICK=1               very short smoke run (1 round of 1 s; report goes to bench/results/*-quick.md)
//   BENCH_DURATION_S=5          seconds per round
//   BENCH_ROUNDS=3              rounds per side and scenario (interleaved bridge, floor, bridge, …)
//   BENCH_CONCURRENCY=16        clients for the main and scale phases
//   BENCH_LATENCY_CONCURRENCY=64, BENCH_UPSTREAM_LATENCY_MS=30   the latency phase
//   BENCH_PACED_RATE=25         …which also runs each scenario at this fixed request rate (0: not)
//   BENCH_SCALE_SIZES=100,100000  users seeded in the emulator for the scale phase
//   BENCH_PHASES=proxy,store    which phases run: proxy, store, main, scale, latency, profile, ab, or
//                               "all" (proxy,store,main,scale,latency); profile also with BENCH_PROFILE=1
//   BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/test   the PostgreSQL bridge of the proxy phase
//                               (BENCH_DATABASE_URL wins; "0": none)
//   BENCH_STORE_USERS=100000    users in the embedded store for the store phase (embedded store only)
//   BENCH_AB_MAIN=/path/dist/main.js   phase "ab": that (baseline) build against this checkout's bridge
//   BENCH_AB_MAIN_B=/path/dist/main.js  …or against that build
//   BENCH_SCENARIOS=create,get,filter,patch,groupAdd   a subset (main, latency and profile phases)
//   BENCH_LOG_LEVEL=info        the bridge's LOG_LEVEL (its log goes to a file)
//   BENCH_DATABASE_URL=…        use PostgreSQL (a fresh schema per bridge) instead of the embedded store
//                               (main, scale, latency, profile and ab phases)
//   BENCH_KEEP=1                keep the temporary directory (logs, data) for inspection
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, hostname, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { closedLoop, type Op } from './lib/load.js';
import {
  bridgeStoreOps,
  emulatorSummary,
  freshSchema,
  killAllChildren,
  type Proc,
  postgresUnavailable,
  processCpuSplitMs,
  processPeakRssKb,
  ROOT,
  startBridgeProcess,
  startEmulatorProcess,
} from './lib/procs.js';
import { type CpuProfile, summarizeProfile } from './lib/profile.js';
import { proxyPhase } from './lib/proxy-phase.js';
import {
  type BenchResults,
  formatReport,
  formatSummary,
  type MachineInfo,
  reportFileName,
  type ScaleRow,
  type ScenarioResult,
} from './lib/report.js';
import {
  allScenarios,
  createPoolUsers,
  floorClient,
  lookupScenarios,
  lookupSeededUsers,
  type PoolUser,
  type Scenario,
  ScimHttp,
  type StackContext,
} from './lib/scenarios.js';
import { aggregate, compare, diffCounts, mergeCounts, type RoundStats, roundStats } from './lib/stats.js';
import { storePhase } from './lib/store-phase.js';
import { storeAddedMb } from './lib/targets.js';

const env = process.env;
const num = (name: string, dflt: number) => {
  const v = env[name];
  if (v === undefined || v.trim() === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`);
  return n;
};

const QUICK = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
const DURATION_S = num('BENCH_DURATION_S', QUICK ? 1 : 5);
const ROUNDS = Math.floor(num('BENCH_ROUNDS', QUICK ? 1 : 3));
const CONCURRENCY = Math.floor(num('BENCH_CONCURRENCY', 16));
const LATENCY_CONCURRENCY = Math.floor(num('BENCH_LATENCY_CONCURRENCY', 64));
/** The latency phase also runs each scenario at this fixed arrival rate (Entra's 25 req/s); 0: not. */
const PACED_RATE = env.BENCH_PACED_RATE === '0' ? 0 : num('BENCH_PACED_RATE', 25);
const UPSTREAM_LATENCY_MS = num('BENCH_UPSTREAM_LATENCY_MS', 30);
const SCALE_SIZES = (env.BENCH_SCALE_SIZES ?? '100,100000').split(',').map((s) => Number(s.trim()));
const LOG_LEVEL = env.BENCH_LOG_LEVEL ?? 'info';
const DATABASE_URL = env.BENCH_DATABASE_URL?.trim() || undefined;
const PROXY_POOL_SIZE = QUICK ? 64 : 200;
const DEFAULT_PHASES = ['proxy', 'store'];
const ALL_PHASES = ['proxy', 'store', 'main', 'scale', 'latency'];
const PHASES = new Set(
  (env.BENCH_PHASES ?? DEFAULT_PHASES.join(','))
    .split(',')
    .map((s) => s.trim())
    .flatMap((s) => (s === 'all' ? ALL_PHASES : s ? [s] : [])),
);
if (env.BENCH_PROFILE === '1') PHASES.add('profile');
/** PostgreSQL for the proxy phase's second bridge. */
const PG_URL =
  env.BENCH_PG_URL === '0'
    ? undefined
    : DATABASE_URL || env.BENCH_PG_URL?.trim() || 'postgres://postgres@127.0.0.1:5432/test';
/** Only these scenarios (create,get,filter,patch,groupAdd) in the main, latency and profile phases. */
const ONLY = env.BENCH_SCENARIOS ? new Set(env.BENCH_SCENARIOS.split(',').map((s) => s.trim())) : undefined;
const selected = (scenarios: Scenario[]) => scenarios.filter((s) => !ONLY || ONLY.has(s.key));
const WARMUP_MS = QUICK ? 300 : 1500;
/** Phase "ab": a baseline build of the bridge (its dist/main.js) against this checkout's. */
const AB_MAIN = env.BENCH_AB_MAIN?.trim() || undefined;
/** …and the build it is compared with (default: this checkout's dist/main.js). */
const AB_MAIN_B = env.BENCH_AB_MAIN_B?.trim() || undefined;
/** Pool users per stack: PATCH spreads workers over them, group adds pair them with groups. */
const POOL_SIZE = Math.max(QUICK ? 64 : 500, CONCURRENCY, LATENCY_CONCURRENCY);
const SCALE_SAMPLE = QUICK ? 50 : 200;

const runId = `b${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const workDir = mkdtempSync(join(tmpdir(), 'volc-bench-'));
const notes: string[] = [];

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

// ---------------------------------------------------------------- stacks

interface Stack {
  name: string;
  emulator: Proc;
  bridge: Proc;
  ctx: StackContext;
  stop(): Promise<void>;
}

async function startStack(
  name: string,
  o: { latencyMs?: number; seedUsers?: number; concurrency: number; cpuProfDir?: string },
): Promise<Stack> {
  const t0 = Date.now();
  const emulator = await startEmulatorProcess({
    dir: workDir,
    name: `${name}-emulator`,
    latencyMs: o.latencyMs,
    seedUsers: o.seedUsers,
  });
  let schema: { url: string; drop(): Promise<void> } | undefined;
  let bridge: Proc;
  try {
    if (DATABASE_URL) schema = await freshSchema(DATABASE_URL, `${runId}_${name}`);
    if (o.cpuProfDir) {
      // Initialise the store (initdb, migrations) in an unprofiled run first: the profile should show
      // the bridge serving requests, not creating its database.
      const init = await startBridgeProcess({
        dir: workDir,
        name: `${name}-bridge`,
        emulatorUrl: emulator.url,
        databaseUrl: schema?.url,
        logLevel: LOG_LEVEL,
      });
      await init.stop();
    }
    bridge = await startBridgeProcess({
      dir: workDir,
      name: `${name}-bridge`,
      emulatorUrl: emulator.url,
      databaseUrl: schema?.url,
      logLevel: LOG_LEVEL,
      cpuProfDir: o.cpuProfDir,
    });
  } catch (e) {
    await emulator.stop();
    await schema?.drop().catch(() => {});
    throw e;
  }
  const http = new ScimHttp(bridge.url, Math.max(o.concurrency, 16));
  const client = floorClient(emulator.url, Math.max(o.concurrency, 16));
  log(
    `[${name}] emulator pid ${emulator.pid}, bridge pid ${bridge.pid} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  return {
    name,
    emulator,
    bridge,
    ctx: { runId, tag: name, http, client, users: [], concurrency: o.concurrency },
    async stop() {
      await http.close();
      await client.close();
      await bridge.stop();
      await emulator.stop();
      await schema?.drop().catch((e) => log(`could not drop schema: ${(e as Error).message}`));
    },
  };
}

// ---------------------------------------------------------------- rounds

type Side = 'bridge' | 'floor';

interface Measured {
  stats: RoundStats;
  errorKinds: Record<string, number>;
  errorSamples: string[];
  /** System (kernel) CPU per request, ms: the share of stats.cpuPerRequestMs spent in syscalls and faults. */
  systemPerRequestMs: number;
}

/** Requests per second seen last time, per (stack, scenario, side): sizes the group supply. */
const lastRate = new Map<string, number>();

async function measure(
  stack: Stack,
  scenario: Scenario,
  side: Side,
  durationMs: number,
  concurrency: number,
  ratePerSec?: number,
): Promise<Measured> {
  const rateKey = `${stack.name}/${scenario.key}/${side}/${ratePerSec ?? 'max'}`;
  const rate = ratePerSec ?? lastRate.get(rateKey) ?? 4000;
  // Generous: a round may well run faster than the one before it (warm-up, a quieter machine).
  const expected = Math.ceil(rate * (durationMs / 1000) * 3) + concurrency * 2;
  await scenario.prepare?.(side, expected);
  const op: Op = side === 'bridge' ? scenario.bridge : scenario.floor;
  const storeBefore = side === 'bridge' ? await bridgeStoreOps(stack.bridge.url) : undefined;
  const callsBefore = (await emulatorSummary(stack.emulator.url)).calls;
  const cpuBridgeBefore = processCpuSplitMs(stack.bridge.pid);
  const cpuSelfBefore = process.cpuUsage();
  const samplesBefore = stack.ctx.http.errorSamples.length;
  const load = await closedLoop({ concurrency, durationMs, op, ratePerSec });
  const cpuSelf = process.cpuUsage(cpuSelfBefore);
  const cpuBridgeAfter = processCpuSplitMs(stack.bridge.pid);
  const callsAfter = (await emulatorSummary(stack.emulator.url)).calls;
  const storeAfter = storeBefore ? await bridgeStoreOps(stack.bridge.url) : undefined;
  lastRate.set(rateKey, load.requests / (load.elapsedMs / 1000));
  // The bridge's user and system time apart (the log line shows both); the floor's is the runner's.
  const bridgeUserMs = (cpuBridgeAfter?.user ?? Number.NaN) - (cpuBridgeBefore?.user ?? Number.NaN);
  const bridgeSystemMs = (cpuBridgeAfter?.system ?? Number.NaN) - (cpuBridgeBefore?.system ?? Number.NaN);
  const cpuMs = side === 'bridge' ? bridgeUserMs + bridgeSystemMs : (cpuSelf.user + cpuSelf.system) / 1000;
  const systemMs = side === 'bridge' ? bridgeSystemMs : cpuSelf.system / 1000;
  const stats = roundStats({
    ...load,
    cpuMs,
    upstreamCalls: diffCounts(callsAfter, callsBefore),
    peakRssKb: side === 'bridge' ? processPeakRssKb(stack.bridge.pid) : undefined,
    storeOps: storeBefore && storeAfter ? diffCounts(storeAfter, storeBefore) : undefined,
  });
  return {
    stats,
    errorKinds: load.errorKinds,
    errorSamples: [...load.errorSamples, ...stack.ctx.http.errorSamples.slice(samplesBefore)],
    systemPerRequestMs: load.requests > 0 ? systemMs / load.requests : Number.NaN,
  };
}

function describe(m: Measured): string {
  const s = m.stats;
  const rss = s.peakRssMb !== undefined ? ` rss ${s.peakRssMb.toFixed(0)} MB` : '';
  return (
    `${s.throughput.toFixed(0)} req/s p50 ${s.p50Ms.toFixed(2)} p99 ${s.p99Ms.toFixed(2)} ms ` +
    `cpu ${s.cpuPerRequestMs.toFixed(3)} ms/req (sys ${m.systemPerRequestMs.toFixed(3)}) upstream ${s.upstreamPerRequest.toFixed(2)}/req` +
    `${s.storePerRequest !== undefined ? ` store ${s.storePerRequest.toFixed(2)}/req` : ''} errors ${s.errors}${rss}`
  );
}

const errorSamples: string[] = [];
function keepSamples(where: string, m: Measured): void {
  for (const s of m.errorSamples) if (errorSamples.length < 20) errorSamples.push(`${where}: ${s}`);
}

/** Warm-up, then interleaved bridge/floor rounds; medians and paired ratios. */
async function compareScenario(
  phase: string,
  stack: Stack,
  scenario: Scenario,
  concurrency: number,
  ratePerSec?: number,
): Promise<ScenarioResult> {
  await measure(stack, scenario, 'bridge', WARMUP_MS, concurrency, ratePerSec);
  await measure(stack, scenario, 'floor', WARMUP_MS, concurrency, ratePerSec);
  const rounds: Record<Side, RoundStats[]> = { bridge: [], floor: [] };
  const kinds: Record<Side, Record<string, number>> = { bridge: {}, floor: {} };
  for (let i = 1; i <= ROUNDS; i++) {
    for (const side of ['bridge', 'floor'] as const) {
      const m = await measure(stack, scenario, side, DURATION_S * 1000, concurrency, ratePerSec);
      rounds[side].push(m.stats);
      mergeCounts(kinds[side], m.errorKinds);
      const label = `${scenario.title}${ratePerSec ? ` @${ratePerSec} req/s` : ''}`;
      keepSamples(`${phase} ${label} ${side}`, m);
      log(`[${phase}] ${label} ${side.padEnd(6)} r${i}: ${describe(m)}`);
    }
  }
  const comparison = compare(rounds.bridge, rounds.floor);
  comparison.bridge.errorKinds = kinds.bridge;
  comparison.floor.errorKinds = kinds.floor;
  return { key: scenario.key, title: scenario.title, floorCalls: scenario.floorCalls, comparison };
}

// ---------------------------------------------------------------- phases

async function mainPhase(): Promise<ScenarioResult[]> {
  const stack = await startStack('main', { concurrency: CONCURRENCY });
  try {
    const t0 = Date.now();
    stack.ctx.users = await createPoolUsers(
      stack.ctx.http,
      stack.ctx.client,
      `${runId}-main`,
      POOL_SIZE,
      CONCURRENCY,
    );
    log(`[main] ${POOL_SIZE} pool users created in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const { scenarios, repeats } = allScenarios(stack.ctx);
    const results: ScenarioResult[] = [];
    for (const scenario of scenarios)
      results.push(await compareScenario('main', stack, scenario, CONCURRENCY));
    if (repeats() > 0)
      notes.push(`main: ${repeats()} group adds re-added an existing member (the pair supply ran out).`);
    return results;
  } finally {
    await stack.stop();
  }
}

async function scalePhase(): Promise<ScaleRow[]> {
  const stacks: { size: number; stack: Stack; own: PoolUser[]; seeded: PoolUser[] }[] = [];
  try {
    for (const size of SCALE_SIZES) {
      const t0 = Date.now();
      const stack = await startStack(`scale${size}`, { seedUsers: size, concurrency: CONCURRENCY });
      log(
        `[scale] emulator seeded with ${size} users, stack ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
      const own = await createPoolUsers(
        stack.ctx.http,
        stack.ctx.client,
        `${runId}-scale${size}`,
        Math.min(100, POOL_SIZE),
        CONCURRENCY,
      );
      const sample = Math.min(SCALE_SAMPLE, size);
      const names = Array.from(
        { length: sample },
        (_, i) => `seed-user-${1 + Math.floor((i * size) / sample)}`,
      );
      const seeded = await lookupSeededUsers(stack.ctx.client, names, CONCURRENCY);
      stacks.push({ size, stack, own, seeded });
    }
    const kinds: { key: string; title: string; scenario: (s: (typeof stacks)[number]) => Scenario }[] = [
      {
        key: 'get-own',
        title: 'GET /Users/{id} (bridge-created user)',
        scenario: (s) => lookupScenarios(s.stack.ctx, s.own)[0],
      },
      {
        key: 'get-seeded',
        title: 'GET /Users/{id} (seeded user, no store record)',
        scenario: (s) => lookupScenarios(s.stack.ctx, s.seeded)[0],
      },
      {
        key: 'filter-seeded',
        title: 'GET /Users?filter=userName eq (seeded user)',
        scenario: (s) => lookupScenarios(s.stack.ctx, s.seeded)[1],
      },
    ];
    const rows: ScaleRow[] = [];
    for (const kind of kinds) {
      const perSize = new Map<number, { rounds: RoundStats[]; kinds: Record<string, number> }>();
      for (const s of stacks) {
        perSize.set(s.size, { rounds: [], kinds: {} });
        await measure(s.stack, kind.scenario(s), 'bridge', WARMUP_MS, CONCURRENCY);
      }
      // Sizes interleaved round by round, like bridge and floor elsewhere.
      for (let i = 1; i <= ROUNDS; i++) {
        for (const s of stacks) {
          const m = await measure(s.stack, kind.scenario(s), 'bridge', DURATION_S * 1000, CONCURRENCY);
          perSize.get(s.size)!.rounds.push(m.stats);
          mergeCounts(perSize.get(s.size)!.kinds, m.errorKinds);
          keepSamples(`scale ${kind.title} ${s.size}`, m);
          log(`[scale] ${kind.title} @${s.size} r${i}: ${describe(m)}`);
        }
      }
      for (const s of stacks) {
        const { rounds, kinds: errorKinds } = perSize.get(s.size)!;
        rows.push({ title: kind.title, users: s.size, stats: aggregate(rounds, errorKinds) });
      }
    }
    return rows;
  } finally {
    for (const s of stacks) await s.stack.stop();
  }
}

async function latencyPhase(): Promise<{ closed: ScenarioResult[]; paced: ScenarioResult[] }> {
  const stack = await startStack('latency', {
    latencyMs: UPSTREAM_LATENCY_MS,
    concurrency: LATENCY_CONCURRENCY,
  });
  try {
    const t0 = Date.now();
    stack.ctx.users = await createPoolUsers(
      stack.ctx.http,
      stack.ctx.client,
      `${runId}-lat`,
      POOL_SIZE,
      LATENCY_CONCURRENCY,
    );
    log(`[latency] ${POOL_SIZE} pool users created in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const { scenarios, repeats } = allScenarios(stack.ctx);
    const closed: ScenarioResult[] = [];
    const paced: ScenarioResult[] = [];
    for (const scenario of selected(scenarios)) {
      closed.push(await compareScenario('latency', stack, scenario, LATENCY_CONCURRENCY));
      // The same at an IdP's pace: latency below saturation, what one request really waits.
      if (PACED_RATE > 0)
        paced.push(await compareScenario('latency', stack, scenario, LATENCY_CONCURRENCY, PACED_RATE));
    }
    if (repeats() > 0)
      notes.push(`latency: ${repeats()} group adds re-added an existing member (the pair supply ran out).`);
    return { closed, paced };
  } finally {
    await stack.stop();
  }
}

/**
 * A/B: the baseline build (BENCH_AB_MAIN) and this checkout's bridge, each with its own store and
 * pool users, against one emulator; rounds interleaved A, B, A, B, … CPU/req is the figure to read.
 */
async function abPhase(): Promise<ScenarioResult[]> {
  if (!AB_MAIN) throw new Error('BENCH_PHASES=ab needs BENCH_AB_MAIN=<path of the baseline build’s main.js>');
  const emulator = await startEmulatorProcess({ dir: workDir, name: 'ab-emulator' });
  const stacks: Stack[] = [];
  try {
    for (const [name, mainJs] of [
      ['ab-a', AB_MAIN],
      ['ab-b', AB_MAIN_B],
    ] as const) {
      // BENCH_DATABASE_URL: each build on a fresh schema of its own.
      const schema = DATABASE_URL ? await freshSchema(DATABASE_URL, `${runId}_${name}`) : undefined;
      const bridge = await startBridgeProcess({
        dir: workDir,
        name: `${name}-bridge`,
        emulatorUrl: emulator.url,
        databaseUrl: schema?.url,
        logLevel: LOG_LEVEL,
        mainJs,
      });
      const http = new ScimHttp(bridge.url, CONCURRENCY);
      const client = floorClient(emulator.url, CONCURRENCY);
      const stack: Stack = {
        name,
        emulator,
        bridge,
        ctx: { runId, tag: name, http, client, users: [], concurrency: CONCURRENCY },
        async stop() {
          await http.close();
          await client.close();
          await bridge.stop();
          await schema?.drop().catch((e) => log(`could not drop schema: ${(e as Error).message}`));
        },
      };
      stacks.push(stack);
      stack.ctx.users = await createPoolUsers(http, client, `${runId}-${name}`, POOL_SIZE, CONCURRENCY);
      log(`[ab] ${name}: bridge pid ${bridge.pid} (${mainJs ?? 'dist/main.js'}) ready`);
    }
    const [a, b] = stacks;
    const sa = selected(allScenarios(a.ctx).scenarios);
    const sb = selected(allScenarios(b.ctx).scenarios);
    const results: ScenarioResult[] = [];
    for (let k = 0; k < sa.length; k++) {
      await measure(a, sa[k], 'bridge', WARMUP_MS, CONCURRENCY);
      await measure(b, sb[k], 'bridge', WARMUP_MS, CONCURRENCY);
      const rounds: { a: RoundStats[]; b: RoundStats[] } = { a: [], b: [] };
      for (let i = 1; i <= ROUNDS; i++) {
        for (const [label, stack, scenario] of [
          ['a', a, sa[k]],
          ['b', b, sb[k]],
        ] as const) {
          const m = await measure(stack, scenario, 'bridge', DURATION_S * 1000, CONCURRENCY);
          rounds[label].push(m.stats);
          keepSamples(`ab ${scenario.title} ${label}`, m);
          log(
            `[ab] ${scenario.title} ${label === 'a' ? 'A (baseline)' : 'B (this checkout)'} r${i}: ${describe(m)}`,
          );
        }
      }
      // "bridge" is B (this checkout), "floor" is A (the baseline): ratios read B/A.
      results.push({
        key: sa[k].key,
        title: sa[k].title,
        floorCalls: 'baseline',
        comparison: compare(rounds.b, rounds.a),
      });
    }
    return results;
  } finally {
    for (const stack of stacks) await stack.stop();
    await emulator.stop();
  }
}

async function profilePhase(reportBase: string): Promise<BenchResults['profile']> {
  const profDir = join(workDir, 'cpu-prof');
  mkdirSync(profDir, { recursive: true });
  const stack = await startStack('profile', { concurrency: CONCURRENCY, cpuProfDir: profDir });
  let stopped = false;
  // Requests the profiled bridge served: the pool's creates, then every scenario's.
  let requests = POOL_SIZE;
  try {
    stack.ctx.users = await createPoolUsers(
      stack.ctx.http,
      stack.ctx.client,
      `${runId}-prof`,
      POOL_SIZE,
      CONCURRENCY,
    );
    const { scenarios } = allScenarios(stack.ctx);
    for (const scenario of selected(scenarios)) {
      const m = await measure(stack, scenario, 'bridge', DURATION_S * 1000, CONCURRENCY);
      requests += m.stats.requests;
      log(`[profile] ${scenario.title}: ${describe(m)}`);
    }
    // The profile is written when the bridge exits.
    await stack.stop();
    stopped = true;
  } finally {
    if (!stopped) await stack.stop();
  }
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('the bridge wrote no .cpuprofile');
  const profile = JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile;
  const kept = join(ROOT, 'bench/results', `${reportBase}.cpuprofile`);
  copyFileSync(join(profDir, file), kept);
  const only = selected(allScenarios(stack.ctx).scenarios);
  return {
    summary: summarizeProfile(profile, 20),
    durationS: DURATION_S,
    file: kept.slice(ROOT.length),
    // Per-request figures mean something only when every request was the same kind: a POST-only run
    // (its pool is made of POSTs too).
    ...(only.length === 1 && only[0].key === 'create' ? { requests, scenario: only[0].title } : {}),
  };
}

// ---------------------------------------------------------------- main

function machineInfo(): MachineInfo {
  return {
    date: new Date().toISOString(),
    host: hostname(),
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model?.trim() || 'unknown',
    node: process.version,
    memoryGb: totalmem() / 1024 ** 3,
    loadAvgStart: loadavg(),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const machine = machineInfo();
  const resultsDir = join(ROOT, 'bench/results');
  mkdirSync(resultsDir, { recursive: true });
  // latest.md is the full benchmark only: not a smoke run, not a subset of phases or scenarios.
  const partial = !!ONLY || !DEFAULT_PHASES.every((p) => PHASES.has(p));
  const complete = !QUICK && !partial;
  const fileName = reportFileName(machine, { quick: QUICK, phases: [...PHASES], partial });
  log(
    `volc-scim-bridge bench${QUICK ? ' (quick)' : ''}: ${machine.nproc} CPUs ${machine.cpuModel}, node ${machine.node}, ` +
      `load ${machine.loadAvgStart.map((l) => l.toFixed(2)).join(' ')}; phases ${[...PHASES].join(',')}; work dir ${workDir}`,
  );
  const results: BenchResults = {
    machine,
    config: {
      quick: QUICK,
      durationS: DURATION_S,
      rounds: ROUNDS,
      concurrency: CONCURRENCY,
      latencyConcurrency: LATENCY_CONCURRENCY,
      upstreamLatencyMs: UPSTREAM_LATENCY_MS,
      pacedRate: PACED_RATE,
      store: DATABASE_URL
        ? 'PostgreSQL (BENCH_DATABASE_URL, a fresh schema per bridge)'
        : 'embedded (SQLite in DATA_DIR, a temp dir; WAL, synchronous=FULL)',
      logLevel: LOG_LEVEL,
      scaleSizes: SCALE_SIZES,
      runId,
    },
    main: [],
    scale: [],
    latency: [],
    notes,
  };
  if (['main', 'latency', 'profile', 'ab'].some((p) => PHASES.has(p))) {
    notes.push(
      `Pool: ${POOL_SIZE} users created through the bridge per stack; GET and filter pick one at random per request; ` +
        'PATCH workers each own a disjoint slice of them; group adds pair them with fresh groups (never an existing member).',
    );
    notes.push(
      'PATCH body (Entra): Replace displayName, Replace name.familyName, Replace active "True" (string). ' +
        'Group add: Add members [{value}] (one member), answered 204.',
    );
  }
  if (PHASES.has('proxy'))
    notes.push(
      `Proxy phase: ${PROXY_POOL_SIZE} users created through each target first; GET picks one of them at random; ` +
        'every POST an Entra-shaped body with a new userName.',
    );
  if (PHASES.has('proxy')) {
    const pgSkipped =
      env.BENCH_PG_URL === '0'
        ? 'BENCH_PG_URL=0'
        : PG_URL
          ? await postgresUnavailable(PG_URL)
          : 'no PostgreSQL URL';
    if (pgSkipped) log(`[proxy] PostgreSQL bridge skipped: ${pgSkipped}`);
    results.proxy = await proxyPhase({
      workDir,
      runId,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      durationMs: DURATION_S * 1000,
      warmupMs: WARMUP_MS,
      poolSize: PROXY_POOL_SIZE,
      logLevel: LOG_LEVEL,
      ...(pgSkipped ? { pgSkipped } : { pgUrl: PG_URL }),
      log,
      keepSamples: (where, samples) => {
        for (const s of samples) if (errorSamples.length < 20) errorSamples.push(`${where}: ${s}`);
      },
    });
  }
  if (PHASES.has('main')) results.main = await mainPhase();
  if (PHASES.has('scale')) results.scale = await scalePhase();
  if (PHASES.has('latency')) {
    const { closed, paced } = await latencyPhase();
    results.latency = closed;
    results.latencyPaced = paced;
  }
  if (PHASES.has('ab')) {
    results.ab = await abPhase();
    results.abBaseline = `A = ${AB_MAIN}, B = ${AB_MAIN_B ?? 'dist/main.js'}`;
  }
  if (PHASES.has('store') && !DATABASE_URL) {
    const emulator = await startEmulatorProcess({ dir: workDir, name: 'store-emulator' });
    try {
      results.storeScale = await storePhase({
        workDir,
        emulatorUrl: emulator.url,
        users: Math.floor(num('BENCH_STORE_USERS', QUICK ? 10_000 : 100_000)),
        starts: QUICK ? 2 : 5,
        loadMs: DURATION_S * 1000,
        concurrency: CONCURRENCY,
        log,
      });
    } finally {
      await emulator.stop();
    }
  }
  if (results.proxy && results.storeScale?.emptyReadyRssMb) {
    results.proxy.storeAddedMb = storeAddedMb(
      results.storeScale.readyRssMb,
      results.storeScale.emptyReadyRssMb,
    );
    results.proxy.storeUsers = results.storeScale.users;
  }
  if (PHASES.has('profile')) results.profile = await profilePhase(fileName.replace(/\.md$/, ''));
  if (errorSamples.length > 0)
    notes.push(`First errors: ${errorSamples.map((s) => `\`${s.replace(/`/g, "'")}\``).join('; ')}`);
  machine.loadAvgEnd = loadavg();
  results.wallSeconds = (Date.now() - started) / 1000;

  const report = formatReport(results);
  writeFileSync(join(resultsDir, fileName), report);
  if (complete) writeFileSync(join(resultsDir, 'latest.md'), report);
  log('');
  log(formatSummary(results));
  log('');
  log(`report: bench/results/${fileName}${complete ? ' (and bench/results/latest.md)' : ''}`);
}

let exiting = false;
function cleanup(): void {
  killAllChildren();
  if (env.BENCH_KEEP !== '1') rmSync(workDir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (exiting) return;
    exiting = true;
    log(`\n${signal}: stopping the emulator and bridge processes`);
    cleanup();
    process.exit(130);
  });
}

main()
  .then(() => {
    cleanup();
    process.exit(0);
  })
  .catch((err) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    if (env.BENCH_KEEP !== '1') process.stderr.write(`(set BENCH_KEEP=1 to keep the logs in ${workDir})\n`);
    cleanup();
    process.exit(1);
  });
