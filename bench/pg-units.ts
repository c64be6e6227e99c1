// Micro-benchmark: what a POST /Users's two units of work and a GET /Users/{id}'s read cost the
// bridge's process on PostgreSQL, through SqlStore and the pg driver as the bridge opens them
// (`npx tsx bench/pg-units.ts`; PG_BENCH_URL (postgres://postgres@127.0.0.1:5432/test),
// PG_BENCH_POSTS (2000), PG_BENCH_CONCURRENCY (16), PG_BENCH_STORE=<path of a build's dist/store/index.js>
// loads that build's store instead of src/).
// A fresh schema, dropped after. Reported: process CPU (user + sys) per POST and per GET; the
// PostgreSQL backends' CPU is not counted (other processes); and the time the main thread was
// runnable but not running (/proc/thread-self/schedstat), with its involuntary switches.
//
// Measured on the shared 2-CPU VM (load average 4–8 from other jobs: a build's figures vary by ±20%
// from run to run, so builds are compared in alternating runs), 1,500 POSTs and 3,000 GETs at 16
// clients, process CPU µs (user + sys):
//   per POST (two units)   unnamed statements 887–1,120 (sys 168–237)   units' statements named 809–986
//   per GET (one read)     unnamed 120–149                               lookups named 92–102
// System time is a fifth of a POST's CPU; the rest is JavaScript, pg's included (a perf profile:
// answer handling ~20 %, row descriptions and rows ~10 %, the unit's SQL and audit parameters ~5 %,
// the socket write ~10 %). Runnable-but-not-running time was 0.8–5 ms per POST (0.5–1.4
// involuntary switches): what a --cpu-prof profile shows as time in the corked batch's writev is the
// woken PostgreSQL backend taking the CPU, not CPU the bridge spends.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { type CreateAttempt, pendingUnit, readyUnit } from './floor/create-units.js';
import { freshSchema } from './lib/procs.js';

const URL_ = process.env.PG_BENCH_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const POSTS = Number(process.env.PG_BENCH_POSTS ?? 2000);
const CONCURRENCY = Number(process.env.PG_BENCH_CONCURRENCY ?? 16);

const ATTRIBUTES = {
  displayName: 'Bench User',
  name: { formatted: 'Bench User', familyName: 'User', givenName: 'Bench' },
  emails: [{ primary: true, type: 'work', value: 'bench@bench.example' }],
  'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department: 'Benchmark' },
};

function attemptOf(i: number): CreateAttempt {
  return {
    scimId: randomUUID(),
    userName: `user-${i}-${randomUUID()}@bench.example`,
    externalId: randomUUID(),
    attributes: ATTRIBUTES,
    requestId: `req-${i}-${randomUUID()}`,
    actor: 'entra',
    clientIp: '127.0.0.1',
    startedAt: Date.now(),
  };
}

async function load(): Promise<typeof import('../src/store/index.js')> {
  const built = process.env.PG_BENCH_STORE;
  if (built) return import(pathToFileURL(built).href);
  return import('../src/store/index.js');
}

/**
 * The main thread's scheduler figures: ns on the CPU, ns runnable but waiting for a CPU (preempted or
 * not yet scheduled), and involuntary context switches (preemptions).
 */
function sched() {
  const [onCpu, waiting] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
  const status = readFileSync('/proc/thread-self/status', 'utf8');
  const preempted = Number(/nonvoluntary_ctxt_switches:\s*(\d+)/.exec(status)?.[1] ?? 0);
  return { onCpu, waiting, preempted };
}

/** Runs `n` calls of `one`, CONCURRENCY at a time; process CPU µs per call. */
async function measure(n: number, one: (i: number) => Promise<void>) {
  let next = 0;
  const cpu0 = process.cpuUsage();
  const s0 = sched();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) await one(next++);
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  const s1 = sched();
  return {
    waiting: (s1.waiting - s0.waiting) / 1000 / n,
    preempted: (s1.preempted - s0.preempted) / n,
    wall: ((performance.now() - t0) * 1000) / n,
    user: cpu.user / n,
    sys: cpu.system / n,
  };
}

async function main(): Promise<void> {
  const schema = await freshSchema(URL_, 'pgunits');
  const { openStore } = await load();
  const store = await openStore({ databaseUrl: schema.url });
  try {
    const ids: string[] = [];
    const post = async (i: number) => {
      const a = attemptOf(i);
      const pending = await store.commit(pendingUnit(a));
      const version = pending.users.get(a.scimId);
      if (!version || version === 'deleted') throw new Error('no pending record');
      await store.commit(
        readyUnit(a, version.version, randomUUID(), { UserName: a.userName }, [
          { action: 'CreateUser', requestId: `REQ${i}`, outcome: 'ok' },
        ]),
      );
      ids.push(a.scimId);
    };
    await measure(200, post); // warm-up
    const p = await measure(POSTS, post);
    const get = async (i: number) => {
      if (!(await store.getUserWithGroups(ids[i % ids.length]))) throw new Error('no user');
    };
    await measure(500, get);
    const g = await measure(POSTS * 2, get);
    const f = (v: number) => v.toFixed(0).padStart(5);
    console.log(
      `POST: user ${f(p.user)} + sys ${f(p.sys)} = ${f(p.user + p.sys)} µs CPU, wall ${f(p.wall)} µs, runnable not running ${f(p.waiting)} µs, preempted ${p.preempted.toFixed(2)}×; ` +
        `GET: user ${f(g.user)} + sys ${f(g.sys)} = ${f(g.user + g.sys)} µs CPU, wall ${f(g.wall)} µs, runnable not running ${f(g.waiting)} µs, preempted ${g.preempted.toFixed(2)}×`,
    );
  } finally {
    await store.close();
    await schema.drop();
  }
}

await main();
