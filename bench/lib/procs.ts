// The processes under test: the standalone emulator and the bridge, each a child process on
// loopback with its log in a file, plus readers for their CPU time and peak RSS from /proc.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import ts from 'typescript';
import { request } from 'undici';
import { DEV_ACCESS_KEY, DEV_SECRET_KEY } from '../../src/emulator/index.js';
import { parseStoreOps } from './stats.js';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const BENCH_TOKEN = 'bench-token-0123456789abcdef';

let clockTicks: number | undefined;
/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on Linux almost everywhere). */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime + stime of a process, in ms, from /proc/<pid>/stat; undefined when unreadable. */
export function processCpuMs(pid: number): number | undefined {
  const split = processCpuSplitMs(pid);
  return split && split.user + split.system;
}

/** A process's user and system CPU time so far, in ms (utime, stime); undefined when unreadable. */
export function processCpuSplitMs(pid: number): { user: number; system: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    const ms = (ticks: string) => (Number(ticks) * 1000) / clockTicksPerSecond();
    return { user: ms(fields[11]), system: ms(fields[12]) };
  } catch {
    return undefined;
  }
}

/** A memory figure (VmHWM, VmRSS, …) of a process in KiB from /proc/<pid>/status; undefined when unreadable. */
function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Peak RSS (VmHWM) of a process in KiB; undefined when unreadable. */
export function processPeakRssKb(pid: number): number | undefined {
  return statusKb(pid, 'VmHWM');
}

/** Current RSS (VmRSS) of a process in KiB; undefined when unreadable. */
export function processRssKb(pid: number): number | undefined {
  return statusKb(pid, 'VmRSS');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const children = new Set<ChildProcess>();

/** Kills (SIGKILL) every child this module started and that is still running: for crash paths only. */
export function killAllChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

export interface Proc {
  name: string;
  pid: number;
  url: string;
  logFile: string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

function startProcess(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  url: string,
): Proc {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  if (!child.pid) throw new Error(`could not start ${name}`);
  children.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    });
  });
  const pid = child.pid;
  return {
    name,
    pid,
    url,
    logFile,
    exited,
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `url` until it answers 2xx, the process exits, or `timeoutMs` passes. */
async function waitReady(proc: Proc, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc.exited.then(() => {
    exited = true;
  });
  while (Date.now() < deadline) {
    if (exited) break;
    try {
      const res = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const tail = readFileSync(proc.logFile, 'utf8').split('\n').slice(-15).join('\n');
  await proc.stop(1000);
  throw new Error(
    `${proc.name} did not become ready (${exited ? 'it exited' : 'timeout'}); log tail:\n${tail}`,
  );
}

export interface EmulatorProcOptions {
  dir: string;
  name: string;
  latencyMs?: number;
  seedUsers?: number;
}

export async function startEmulatorProcess(opts: EmulatorProcOptions): Promise<Proc> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    EMULATOR_PORT: String(port),
    EMULATOR_HOST: '127.0.0.1',
    EMULATOR_LATENCY_MS: String(opts.latencyMs ?? 0),
    EMULATOR_SEED_USERS: String(opts.seedUsers ?? 0),
    EMULATOR_LOG_LEVEL: 'warn',
    VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
    VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
  };
  const url = `http://127.0.0.1:${port}`;
  const proc = startProcess(
    opts.name,
    [join(ROOT, 'dist/emulator/main.js')],
    env,
    join(opts.dir, `${opts.name}.log`),
    url,
  );
  // Seeding 100,000 users takes a few seconds before the port opens.
  await waitReady(proc, `${url}/_emulator/state?summary=1`, 120_000);
  return proc;
}

export interface BridgeProcOptions {
  dir: string;
  name: string;
  emulatorUrl: string;
  /** PostgreSQL URL; else the embedded store's DATA_DIR under `dir`. */
  databaseUrl?: string;
  logLevel: string;
  /** Directory for `node --cpu-prof`; no profiling when undefined. */
  cpuProfDir?: string;
  extraEnv?: Record<string, string>;
  /** Another build of the bridge (an A/B comparison); default this checkout's dist/main.js. */
  mainJs?: string;
}

/** The bridge's environment: credentials for the standalone emulator, its store, its port. */
export function bridgeEnv(opts: BridgeProcOptions & { dataDir?: string }, port: number): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    SCIM_BEARER_TOKENS: BENCH_TOKEN,
    VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
    VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
    VOLCENGINE_ENDPOINT: opts.emulatorUrl,
    LOG_LEVEL: opts.logLevel,
    // Stop promptly when the runner is done with a bridge (no load balancer to drain).
    SHUTDOWN_DELAY_MS: '0',
    // The benchmark drives one token past any IdP's pace to find the saturation point.
    SCIM_RATE_LIMIT: '0',
    ...(opts.databaseUrl
      ? { DATABASE_URL: opts.databaseUrl }
      : { DATA_DIR: opts.dataDir ?? join(opts.dir, `${opts.name}-data`) }),
    ...opts.extraEnv,
  };
}

export async function startBridgeProcess(opts: BridgeProcOptions): Promise<Proc> {
  const port = await freePort();
  const env = bridgeEnv(opts, port);
  const main = opts.mainJs ?? join(ROOT, 'dist/main.js');
  // The emulator is seeded before the bridge's first start: a new store facing an account that
  // already holds users needs --accept-empty-store (builds that predate the flag ignore it).
  const args = [
    ...(opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : []),
    main,
    '--accept-empty-store',
  ];
  const url = `http://127.0.0.1:${port}`;
  const proc = startProcess(opts.name, args, env, join(opts.dir, `${opts.name}.log`), url);
  // Generous: a shared machine under load can be slow to start a process.
  await waitReady(proc, `${url}/healthz`, 180_000);
  return proc;
}

/**
 * Transpiles bench/floor/*.ts (types erased, nothing bundled) into `<dir>/floor/`, so the floor runs
 * under plain `node` as the bridge does; its CloudIdentity client is the built dist/volcengine.
 */
export function buildFloor(dir: string): string {
  const src = join(ROOT, 'bench/floor');
  const out = join(dir, 'floor');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  for (const file of readdirSync(src).filter((f) => f.endsWith('.ts'))) {
    const { outputText } = ts.transpileModule(readFileSync(join(src, file), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: file,
    });
    writeFileSync(join(out, file.replace(/\.ts$/, '.js')), outputText);
  }
  return join(out, 'server.js');
}

/**
 * A floor process (bench/floor/server.ts) against the emulator at `emulatorUrl`: the bare proxy, or
 * with `durable` the durable floor, on the bridge's embedded store in `<dir>/<name>-data` and with
 * its access log at `durable.logLevel` in the process's log file.
 */
export async function startFloorProcess(opts: {
  dir: string;
  name: string;
  emulatorUrl: string;
  serverJs: string;
  durable?: { logLevel: string };
}): Promise<Proc> {
  const port = await freePort();
  const dist = (path: string) => pathToFileURL(join(ROOT, 'dist', path)).href;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    FLOOR_PORT: String(port),
    FLOOR_HOST: '127.0.0.1',
    FLOOR_TOKEN: BENCH_TOKEN,
    FLOOR_CLIENT_MODULE: dist('volcengine/index.js'),
    VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
    VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
    VOLCENGINE_ENDPOINT: opts.emulatorUrl,
    ...(opts.durable
      ? {
          FLOOR_MODE: 'durable',
          FLOOR_STORE_MODULE: dist('store/index.js'),
          FLOOR_LOGGER_MODULE: dist('logger.js'),
          FLOOR_DATA_DIR: join(opts.dir, `${opts.name}-data`),
          FLOOR_LOG_LEVEL: opts.durable.logLevel,
        }
      : {}),
  };
  const url = `http://127.0.0.1:${port}`;
  const proc = startProcess(opts.name, [opts.serverJs], env, join(opts.dir, `${opts.name}.log`), url);
  await waitReady(proc, `${url}/healthz`, 60_000);
  return proc;
}

/**
 * Starts the bridge on `dataDir` and measures process start to the first `/readyz` 200 (store
 * opened and checked, CloudIdentity answered), polling every 5 ms.
 */
export async function startBridgeTimed(
  opts: BridgeProcOptions & { dataDir: string },
): Promise<{ proc: Proc; readyMs: number }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const started = performance.now();
  const proc = startProcess(
    opts.name,
    [join(ROOT, 'dist/main.js'), '--accept-empty-store'],
    bridgeEnv(opts, port),
    join(opts.dir, `${opts.name}.log`),
    url,
  );
  let exited = false;
  void proc.exited.then(() => {
    exited = true;
  });
  // Only our child's answer counts: wait for its own listening line (another process may have
  // taken the port between freePort() and the bridge's listen), then poll /readyz.
  const listening = () => {
    try {
      return readFileSync(proc.logFile, 'utf8').includes(`"port":${port}`);
    } catch {
      return false;
    }
  };
  while (!exited && performance.now() - started < 60_000) {
    if (!listening()) {
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    try {
      const res = await request(`${url}/readyz`, { headersTimeout: 2000, bodyTimeout: 2000 });
      await res.body.dump();
      if (res.statusCode === 200) return { proc, readyMs: performance.now() - started };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await proc.stop(1000);
  throw new Error(`${opts.name} did not become ready; see ${proc.logFile}`);
}

/** The emulator's control API: call counts per Action, and object counts. */
export async function emulatorSummary(url: string): Promise<{
  userCount: number;
  groupCount: number;
  membershipCount: number;
  calls: Record<string, number>;
}> {
  const res = await request(`${url}/_emulator/state?summary=1`);
  if (res.statusCode !== 200) throw new Error(`emulator state: HTTP ${res.statusCode}`);
  return (await res.body.json()) as {
    userCount: number;
    groupCount: number;
    membershipCount: number;
    calls: Record<string, number>;
  };
}

/**
 * Store operations the bridge has made so far, from its /metrics (Prometheus); undefined when the
 * bridge has no such endpoint or metric.
 */
export async function bridgeStoreOps(url: string): Promise<Record<string, number> | undefined> {
  try {
    const res = await request(`${url}/metrics`, { headersTimeout: 5000, bodyTimeout: 5000 });
    const text = await res.body.text();
    if (res.statusCode !== 200 || !text.includes('scim_bridge_store_operation_duration_seconds'))
      return undefined;
    return parseStoreOps(text);
  } catch {
    return undefined;
  }
}

/** A fresh PostgreSQL schema for one bridge (search_path via the URL), and its removal. */
export async function freshSchema(
  baseUrl: string,
  name: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  const schema = `bench_${name.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: baseUrl });
    client.on('error', () => {});
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE SCHEMA "${schema}"`);
  const url = new URL(baseUrl);
  const options = url.searchParams.get('options');
  url.searchParams.set('options', `${options ? `${options} ` : ''}-c search_path=${schema}`);
  return { url: url.toString(), drop: () => admin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`) };
}

/** Why PostgreSQL at `url` cannot be used (undefined when a server answers). */
export async function postgresUnavailable(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (err) {
    return `no PostgreSQL server answered at ${new URL(url).host}: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    await client.end().catch(() => {});
  }
}
