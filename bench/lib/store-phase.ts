// Phase "store" of `npm run bench`: the embedded store at 100,000 users. The store is filled
// directly (one SQLite transaction: minutes through the API), then the bridge is started on it a few
// times: process start to the first /readyz 200, RSS when ready, and peak RSS after a load of
// store-only reads (deactivated users live only in the store) and list pages over all of them.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { upstreamOf } from '../../src/bridge.js';
import { loadConfig } from '../../src/config.js';
import { openStore } from '../../src/store/index.js';
import { closedLoop } from './load.js';
import { bridgeEnv, type Proc, processPeakRssKb, processRssKb, startBridgeTimed } from './procs.js';
import { ScimHttp } from './scenarios.js';
import { median } from './stats.js';

const IDLE_AFTER_LOAD_MS = 10_000;

export interface StorePhaseResult {
  users: number;
  fileMb: number;
  fillSeconds: number;
  startsMs: number[];
  readyRssMb: number[];
  /** RSS at ready of the same bridge on a store without users, started in turn with the full one. */
  emptyReadyRssMb?: number[];
  load: {
    requests: number;
    errors: number;
    rps: number;
    p50Ms: number;
    peakRssMb: number;
    idleRssMb: number;
  };
}

/** Fills DATA_DIR with `users` deactivated users (tombstones: the store is their only home). */
export async function fillStore(dataDir: string, users: number, emulatorUrl: string): Promise<number> {
  const started = performance.now();
  // openStore creates the schema, the marker and the binding the bridge will check.
  const config = loadConfig(
    bridgeEnv({ dir: dataDir, name: 'fill', emulatorUrl, logLevel: 'warn', dataDir }, 0),
    () => 'x',
  );
  const store = await openStore({ dataDir, upstream: upstreamOf(config) });
  await store.close();
  const db = new Database(join(dataDir, 'bridge.sqlite'));
  try {
    db.pragma('journal_mode = WAL');
    const insert = db.prepare(
      `INSERT INTO users (scim_id, upstream_user_id, user_name, user_name_lower, external_id, active, state,
         attributes, tombstone_group_ids) VALUES (?, NULL, ?, ?, ?, 0, 'ready', ?, '[]')`,
    );
    db.transaction(() => {
      for (let i = 0; i < users; i++) {
        const userName = `store-user-${i}@example.com`;
        const attributes = {
          userName,
          externalId: `ext-${i}`,
          name: { givenName: 'Store', familyName: `User ${i}` },
          emails: [{ value: userName, type: 'work', primary: true }],
          title: 'Engineer',
          active: false,
          'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': {
            department: 'R&D',
            employeeNumber: String(i),
          },
        };
        insert.run(
          `s-${String(i).padStart(7, '0')}`,
          userName,
          userName,
          `ext-${i}`,
          JSON.stringify(attributes),
        );
      }
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  return (performance.now() - started) / 1000;
}

export async function storePhase(opts: {
  workDir: string;
  emulatorUrl: string;
  users: number;
  starts: number;
  loadMs: number;
  concurrency: number;
  log: (line: string) => void;
}): Promise<StorePhaseResult> {
  const dataDir = join(opts.workDir, 'store-phase-data');
  const fillSeconds = await fillStore(dataDir, opts.users, opts.emulatorUrl);
  const fileMb = statSync(join(dataDir, 'bridge.sqlite')).size / 1024 ** 2;
  opts.log(
    `[store] ${opts.users} users written to the embedded store in ${fillSeconds.toFixed(1)} s (${fileMb.toFixed(0)} MB)`,
  );
  // The same bridge on a store with no users, started in turn with the full one: what the users add.
  const emptyDir = join(opts.workDir, 'store-phase-empty');
  await fillStore(emptyDir, 0, opts.emulatorUrl);
  const startsMs: number[] = [];
  const readyRssMb: number[] = [];
  const emptyReadyRssMb: number[] = [];
  let last: Proc | undefined;
  for (let i = 0; i < opts.starts; i++) {
    const empty = await startBridgeTimed({
      dir: opts.workDir,
      name: `store-bridge-empty-${i}`,
      emulatorUrl: opts.emulatorUrl,
      logLevel: 'info',
      dataDir: emptyDir,
    });
    emptyReadyRssMb.push((processRssKb(empty.proc.pid) ?? Number.NaN) / 1024);
    await empty.proc.stop();
    const { proc, readyMs } = await startBridgeTimed({
      dir: opts.workDir,
      name: `store-bridge-${i}`,
      emulatorUrl: opts.emulatorUrl,
      logLevel: 'info',
      dataDir,
    });
    startsMs.push(readyMs);
    readyRssMb.push((processRssKb(proc.pid) ?? Number.NaN) / 1024);
    opts.log(
      `[store] start ${i + 1}: /readyz 200 after ${readyMs.toFixed(0)} ms, RSS ${readyRssMb[i].toFixed(0)} MB (empty store: ${emptyReadyRssMb[i].toFixed(0)} MB)`,
    );
    if (i < opts.starts - 1) await proc.stop();
    else last = proc;
  }
  const proc = last!;
  const http = new ScimHttp(proc.url, opts.concurrency);
  try {
    let n = 0;
    const load = await closedLoop({
      concurrency: opts.concurrency,
      durationMs: opts.loadMs,
      op: async () => {
        n += 1;
        const i = Math.floor(Math.random() * opts.users);
        // Mostly single reads and lookups; every 20th request a list page deep in the directory.
        if (n % 20 === 0)
          return http.send('GET', `/scim/v2/Users?startIndex=${1 + i}&count=100`, undefined, 200);
        if (n % 2 === 0)
          return http.send(
            'GET',
            `/scim/v2/Users?filter=${encodeURIComponent(`externalId eq "ext-${i}"`)}`,
            undefined,
            200,
          );
        return http.send('GET', `/scim/v2/Users/s-${String(i).padStart(7, '0')}`, undefined, 200);
      },
    });
    const result = {
      requests: load.requests,
      errors: load.errors,
      rps: load.requests / (load.elapsedMs / 1000),
      p50Ms: median(load.latenciesMs),
      peakRssMb: (processPeakRssKb(proc.pid) ?? Number.NaN) / 1024,
      idleRssMb: Number.NaN,
    };
    // V8 grows its heap lazily under load and gives memory back once idle (its memory reducer).
    await new Promise((r) => setTimeout(r, IDLE_AFTER_LOAD_MS));
    result.idleRssMb = (processRssKb(proc.pid) ?? Number.NaN) / 1024;
    opts.log(
      `[store] load: ${result.requests} requests, ${result.errors} errors, ${result.rps.toFixed(0)} req/s, p50 ${result.p50Ms.toFixed(1)} ms, peak RSS ${result.peakRssMb.toFixed(0)} MB, ${IDLE_AFTER_LOAD_MS / 1000} s later ${result.idleRssMb.toFixed(0)} MB`,
    );
    return { users: opts.users, fileMb, fillSeconds, startsMs, readyRssMb, emptyReadyRssMb, load: result };
  } finally {
    await http.close();
    await proc.stop();
  }
}

/** The report's lines for this phase. */
export function formatStorePhase(r: StorePhaseResult): string[] {
  const med = median;
  return [
    '## Embedded store at scale',
    '',
    `${r.users.toLocaleString('en-US')} users in the embedded store (SQLite, ${r.fileMb.toFixed(0)} MB file; written directly in ${r.fillSeconds.toFixed(1)} s). ` +
      'The bridge was started on it repeatedly; then a closed-loop load of store reads ran against the last start ' +
      '(GET /Users/{id} and `externalId eq` lookups of deactivated users, whose only home is the store, and every 20th request a list page anywhere in the directory).',
    '',
    '| Measure | Median | All |',
    '|---|---|---|',
    `| Process start → first /readyz 200 | ${med(r.startsMs).toFixed(0)} ms | ${r.startsMs.map((x) => x.toFixed(0)).join(', ')} ms |`,
    `| RSS when ready | ${med(r.readyRssMb).toFixed(0)} MB | ${r.readyRssMb.map((x) => x.toFixed(0)).join(', ')} MB |`,
    ...(r.emptyReadyRssMb
      ? [
          `| RSS when ready, store without users | ${med(r.emptyReadyRssMb).toFixed(0)} MB | ${r.emptyReadyRssMb.map((x) => x.toFixed(0)).join(', ')} MB |`,
          `| RSS the users add at ready | ${(med(r.readyRssMb) - med(r.emptyReadyRssMb)).toFixed(1)} MB | difference of the medians |`,
        ]
      : []),
    `| Peak RSS during the load | ${r.load.peakRssMb.toFixed(0)} MB | ${r.load.requests} requests, ${r.load.errors} errors, ${r.load.rps.toFixed(0)} req/s, p50 ${r.load.p50Ms.toFixed(1)} ms |`,
    `| RSS ${IDLE_AFTER_LOAD_MS / 1000} s after the load | ${r.load.idleRssMb.toFixed(0)} MB | |`,
    '',
  ];
}
