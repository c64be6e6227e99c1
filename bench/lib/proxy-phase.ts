// Phase "proxy" of `npm run bench`: the bridge (embedded store, and PostgreSQL when a server
// answers) against the two floor processes (bench/floor/): the bare proxy and the durable floor
// (the bare proxy plus the store, audit and access-log work the bridge's promises require), all against one
// emulator answering at 0 ms, one target at a time in interleaved rounds: CPU per POST /Users and
// per GET /Users/{id}, throughput, peak RSS. The figures and the targets they are held to are in
// targets.ts.
import { closedLoop, forEachLimit, type Op } from './load.js';
import {
  buildFloor,
  emulatorSummary,
  freshSchema,
  type Proc,
  processCpuMs,
  processPeakRssKb,
  startBridgeProcess,
  startEmulatorProcess,
  startFloorProcess,
} from './procs.js';
import { entraUserBody, ScimHttp } from './scenarios.js';
import { diffCounts, mergeCounts, roundStats } from './stats.js';
import type { ProxyPhaseResult, TargetRun } from './targets.js';

export interface ProxyPhaseOptions {
  workDir: string;
  runId: string;
  concurrency: number;
  rounds: number;
  durationMs: number;
  warmupMs: number;
  /** Users each target creates before the rounds, for GET to pick from. */
  poolSize: number;
  logLevel: string;
  /** PostgreSQL for a second bridge (a fresh schema); undefined: none, for the reason in `pgSkipped`. */
  pgUrl?: string;
  pgSkipped?: string;
  log(line: string): void;
  /** Keeps the first error details of a round, for the report's notes. */
  keepSamples(where: string, samples: string[]): void;
}

interface Live {
  key: string;
  proc: Proc;
  http: ScimHttp;
  /** SCIM ids of the users it created before the rounds. */
  pool: string[];
  run: TargetRun;
}

type Operation = 'post' | 'get';

export async function proxyPhase(o: ProxyPhaseOptions): Promise<ProxyPhaseResult> {
  const emulator = await startEmulatorProcess({ dir: o.workDir, name: 'proxy-emulator' });
  const live: Live[] = [];
  let schema: { url: string; drop(): Promise<void> } | undefined;
  const add = (key: string, label: string, proc: Proc) => {
    live.push({
      key,
      proc,
      http: new ScimHttp(proc.url, o.concurrency),
      pool: [],
      run: { label, post: [], get: [], postErrors: {}, getErrors: {}, peakRssMb: Number.NaN },
    });
  };
  try {
    const base = { dir: o.workDir, emulatorUrl: emulator.url, logLevel: o.logLevel };
    add('bridge', 'bridge (embedded store)', await startBridgeProcess({ ...base, name: 'proxy-bridge' }));
    const serverJs = buildFloor(o.workDir);
    add('floor', 'bare proxy (floor)', await startFloorProcess({ ...base, name: 'proxy-floor', serverJs }));
    add(
      'durable',
      'durable floor',
      await startFloorProcess({
        ...base,
        name: 'proxy-durable-floor',
        serverJs,
        durable: { logLevel: o.logLevel },
      }),
    );
    if (o.pgUrl) {
      schema = await freshSchema(o.pgUrl, `${o.runId}_proxy`);
      add(
        'bridge-pg',
        'bridge (PostgreSQL)',
        await startBridgeProcess({ ...base, name: 'proxy-bridge-pg', databaseUrl: schema.url }),
      );
    }
    o.log(
      `[proxy] emulator pid ${emulator.pid}; ${live.map((t) => `${t.key} pid ${t.proc.pid}`).join(', ')}`,
    );

    let created = 0;
    const newUser = (t: Live) => {
      const n = ++created;
      return entraUserBody(`${o.runId}-${t.key}-${n}@bench.example`, n);
    };
    for (const t of live) {
      const ids: string[] = new Array(o.poolSize);
      await forEachLimit(
        Array.from({ length: o.poolSize }, (_, i) => i),
        o.concurrency,
        async (i) => {
          ids[i] = String((await t.http.json('POST', '/scim/v2/Users', newUser(t), 201)).id);
        },
      );
      t.pool = ids;
    }
    o.log(`[proxy] ${o.poolSize} users created through each target`);

    const ops: Record<Operation, (t: Live) => Op> = {
      post: (t) => () => t.http.send('POST', '/scim/v2/Users', newUser(t), 201),
      get: (t) => () => {
        const id = t.pool[Math.floor(Math.random() * t.pool.length)];
        return t.http.send('GET', `/scim/v2/Users/${encodeURIComponent(id)}`, undefined, 200);
      },
    };
    const round = async (t: Live, op: Operation, durationMs: number) => {
      const callsBefore = (await emulatorSummary(emulator.url)).calls;
      const cpuBefore = processCpuMs(t.proc.pid) ?? Number.NaN;
      const samplesBefore = t.http.errorSamples.length;
      const load = await closedLoop({ concurrency: o.concurrency, durationMs, op: ops[op](t) });
      const cpuMs = (processCpuMs(t.proc.pid) ?? Number.NaN) - cpuBefore;
      const callsAfter = (await emulatorSummary(emulator.url)).calls;
      o.keepSamples(`proxy ${op} ${t.key}`, [
        ...load.errorSamples,
        ...t.http.errorSamples.slice(samplesBefore),
      ]);
      return {
        stats: roundStats({
          ...load,
          cpuMs,
          upstreamCalls: diffCounts(callsAfter, callsBefore),
          peakRssKb: processPeakRssKb(t.proc.pid),
        }),
        errorKinds: load.errorKinds,
      };
    };
    for (const op of ['post', 'get'] as const) {
      for (const t of live) await round(t, op, o.warmupMs);
      for (let i = 1; i <= o.rounds; i++) {
        for (const t of live) {
          const m = await round(t, op, o.durationMs);
          t.run[op].push(m.stats);
          mergeCounts(op === 'post' ? t.run.postErrors : t.run.getErrors, m.errorKinds);
          const s = m.stats;
          o.log(
            `[proxy] ${op === 'post' ? 'POST /Users' : 'GET /Users/{id}'} ${t.key.padEnd(9)} r${i}: ` +
              `${s.throughput.toFixed(0)} req/s cpu ${s.cpuPerRequestMs.toFixed(3)} ms/req ` +
              `upstream ${s.upstreamPerRequest.toFixed(2)}/req errors ${s.errors} rss ${s.peakRssMb?.toFixed(0)} MB`,
          );
        }
      }
    }
    for (const t of live) t.run.peakRssMb = (processPeakRssKb(t.proc.pid) ?? Number.NaN) / 1024;
    const byKey = (key: string) => live.find((t) => t.key === key)?.run;
    return {
      concurrency: o.concurrency,
      rounds: o.rounds,
      durationS: o.durationMs / 1000,
      bridge: byKey('bridge')!,
      floor: byKey('floor')!,
      durableFloor: byKey('durable')!,
      ...(byKey('bridge-pg') ? { bridgePg: byKey('bridge-pg') } : {}),
      ...(o.pgSkipped ? { pgSkipped: o.pgSkipped } : {}),
    };
  } finally {
    for (const t of live) {
      await t.http.close();
      await t.proc.stop();
    }
    await emulator.stop();
    await schema?.drop().catch((e) => o.log(`could not drop schema: ${(e as Error).message}`));
  }
}
