// What the operator console costs the bridge at a million audit records (`npx tsx
// bench/console-stalls.ts` after `npm run build`). The embedded store runs on the bridge's event
// loop, so a slow console read delays every request; this measures /healthz latency while each
// console read runs, with the bridge (and the standalone emulator) as separate processes and the
// probes sent from this one, as the liveness probe would.
//
// Environment:
//   CONSOLE_BENCH_ROWS=1000000          audit records generated in the DATA_DIR (one statement)
//   CONSOLE_BENCH_BUILDS=label=/path/dist/main.js,…   builds to compare (default: this checkout's)
//   CONSOLE_BENCH_CLIENTS=20            concurrent console clients in the overview phase
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Agent, type Dispatcher, request } from 'undici';
import { fillAuditSqlite } from '../test/helpers/audit-rows.js';
import { killAllChildren, ROOT, startBridgeProcess, startEmulatorProcess } from './lib/procs.js';

const ROWS = Number(process.env.CONSOLE_BENCH_ROWS ?? 1_000_000);
const CLIENTS = Number(process.env.CONSOLE_BENCH_CLIENTS ?? 20);
const ADMIN = 'console-bench-admin-token-0123456789';
const auth = { authorization: `Bearer ${ADMIN}` };
const builds = (process.env.CONSOLE_BENCH_BUILDS ?? `this checkout=${join(ROOT, 'dist/main.js')}`)
  .split(',')
  .map((b) => {
    const eq = b.indexOf('=');
    return { label: b.slice(0, eq), mainJs: b.slice(eq + 1) };
  });

const q = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
};
const ms = (v: number) => `${v.toFixed(v < 10 ? 1 : 0)} ms`;
const summary = (values: number[]) =>
  `n=${values.length} p50 ${ms(q(values, 50))}, p99 ${ms(q(values, 99))}, max ${ms(Math.max(...values))}`;
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

/** Milliseconds to a complete answer; a non-200 throws unless `allowFailure` (a probe that timed out still took that long). */
async function timed(
  url: string,
  headers: Record<string, string> = {},
  allowFailure = false,
  dispatcher?: Dispatcher,
): Promise<number> {
  const t = performance.now();
  const res = await request(url, { headers, headersTimeout: 0, bodyTimeout: 0, dispatcher });
  await res.body.dump();
  if (res.statusCode !== 200 && !allowFailure) throw new Error(`${url}: ${res.statusCode}`);
  return performance.now() - t;
}

/** The probes' own connection, as a kubelet's: never queued behind the console's requests here. */
const probes = new Agent({ connections: 1 });

/** /healthz one after another (20 ms apart) until `done()`. */
async function probe(base: string, done: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  while (!done()) {
    latencies.push(await timed(`${base}/healthz`, {}, true, probes));
    await sleep(20);
  }
  return latencies;
}

const dir = mkdtempSync(join(tmpdir(), 'console-bench-'));
process.on('exit', killAllChildren);
try {
  const emulator = await startEmulatorProcess({ dir, name: 'emulator' });

  for (const [i, build] of builds.entries()) {
    // Each build on a DATA_DIR of its own schema (its first start migrates it), then the trail.
    const dataDir = join(dir, `data-${i}`);
    const start = () =>
      startBridgeProcess({
        dir,
        name: `bridge-${i}`,
        emulatorUrl: emulator.url,
        logLevel: 'warn',
        mainJs: build.mainJs,
        extraEnv: { DATA_DIR: dataDir, ADMIN_TOKENS: ADMIN },
      });
    await (await start()).stop();
    const started = performance.now();
    const db = new Database(join(dataDir, 'bridge.sqlite'));
    fillAuditSqlite(db, ROWS);
    db.close();
    console.log(`\n## ${build.label}`);
    console.log(`${ROWS.toLocaleString('en')} audit records generated in ${ms(performance.now() - started)}`);
    const bridge = await start();
    const base = bridge.url;
    const idle: number[] = [];
    for (let i = 0; i < 50; i++) idle.push(await timed(`${base}/healthz`));
    console.log(`/healthz idle: ${summary(idle)}`);

    // overview and activity, one at a time
    for (const path of ['overview', 'activity']) {
      const times: number[] = [];
      for (let i = 0; i < 10; i++) times.push(await timed(`${base}/admin/api/${path}`, auth));
      console.log(`/admin/api/${path} alone: ${summary(times)}`);
    }

    // CLIENTS console clients loading the dashboard (overview + activity + recent failures) for 5 s
    let stop = false;
    const loads: number[] = [];
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (!stop) {
        const t = performance.now();
        await Promise.all([
          timed(`${base}/admin/api/overview`, auth),
          timed(`${base}/admin/api/activity`, auth),
          timed(`${base}/admin/api/audit?outcome=error&limit=10`, auth),
        ]);
        loads.push(performance.now() - t);
      }
    });
    const during = probe(base, () => stop);
    await sleep(5_000);
    stop = true;
    await Promise.all(clients);
    console.log(`dashboard loads by ${CLIENTS} clients for 5 s: ${summary(loads)}`);
    console.log(`/healthz meanwhile: ${summary(await during)}`);

    // the whole trail as audit.jsonl, read as fast as this process can
    let exporting = true;
    const t = performance.now();
    let bytes = 0;
    const exported = (async () => {
      const res = await request(`${base}/admin/api/audit.jsonl`, { headers: auth, bodyTimeout: 0 });
      for await (const chunk of res.body) bytes += (chunk as Buffer).length;
      exporting = false;
    })();
    const healthz = await probe(base, () => !exporting);
    await exported;
    console.log(
      `audit.jsonl: ${(bytes / 1e6).toFixed(0)} MB in ${ms(performance.now() - t)}; /healthz meanwhile: ${summary(healthz)}`,
    );
    await bridge.stop();
  }
  await emulator.stop();
} finally {
  killAllChildren();
  rmSync(dir, { recursive: true, force: true });
}
