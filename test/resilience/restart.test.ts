// Restart safety: the bridge runs as a real child process; it is SIGKILLed mid-load and restarted on
// the same store (and port) while Entra- and Okta-shaped clients keep going and retry. The clients'
// retries must converge to the intended state, with no duplicate upstream and a consistent store.
// Short version (npm test): one kill, the embedded store in a temp DATA_DIR. Long version
// (npm run test:resilience): several kills on PostgreSQL when it is reachable, else on the embedded store.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningEmulator, startEmulator } from '../../src/emulator/index.js';
import { openStore } from '../../src/store/index.js';
import { freshPostgresUrl } from '../helpers/postgres.js';
import { ChildBridge, freePort, SOAK_TOKEN } from './bridges.js';
import { LONG, seedFromEnv, writeReportPart } from './report.js';
import {
  crashAfterCommittedCreate,
  type Disruption,
  moderateFaults,
  runSoak,
  secretsInLogs,
  summaryLines,
  verify,
  verifyStore,
} from './soak.js';

const seed = seedFromEnv();
/** How long crashAfterCommittedCreate holds the retried CreateUser in the emulator. */
const HELD_CREATE_MS = 5_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

describe(`kill -9 and restart mid-load (child process bridge, seed ${seed})`, () => {
  let emulator: RunningEmulator | undefined;
  let bridge: ChildBridge | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    await bridge?.kill();
    await emulator?.close();
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  it(
    'clients retry through the restart and converge; the store stays consistent',
    async () => {
      const notes: string[] = [];
      // The store: PostgreSQL in the long run when reachable, else (and in the short run) the
      // embedded store (SQLite in DATA_DIR), which must hold every acknowledged write across each SIGKILL.
      let env: Record<string, string>;
      let storeKind: string;
      const pg = LONG ? await freshPostgresUrl('resilience') : undefined;
      if (pg && !('skip' in pg)) {
        env = { DATABASE_URL: pg.url };
        storeKind = 'PostgreSQL';
        cleanups.push(pg.drop);
      } else {
        if (pg && 'skip' in pg) {
          const why = `PostgreSQL store variant skipped: ${pg.skip}; using the embedded store (DATA_DIR)`;
          console.warn(`[skip] ${why}`);
          notes.push(why);
        }
        const dir = await mkdtemp(join(tmpdir(), 'resilience-'));
        cleanups.push(() => rm(dir, { recursive: true, force: true }));
        env = { DATA_DIR: join(dir, 'data') };
        storeKind = 'embedded (DATA_DIR)';
      }
      emulator = await startEmulator({ port: 0 });
      const child = new ChildBridge({ port: await freePort(), emulatorUrl: emulator.url, env });
      bridge = child;
      const firstStartMs = await child.start();
      const restarts: number[] = [];
      const restart = async () => {
        restarts.push(await child.start());
      };
      // The first kill lands right after a CreateUser committed (its retry held upstream); the others
      // wherever the load is.
      // The held retry is still run by the emulator (as by a real server) after the bridge died: it
      // lands up to HELD_CREATE_MS later. A bridge back sooner (the embedded store restarts in well
      // under a second) lets the client delete or deactivate that user first, and the late create
      // then makes it again upstream: a write of the dead process that no bridge can take back. So
      // the first restart waits until the held create has landed.
      const killAndWaitOutHeldCreate = async () => {
        const killedAt = Date.now();
        await child.kill();
        await sleep(HELD_CREATE_MS + 250 - (Date.now() - killedAt));
      };
      const kills = LONG ? [100, 500, 900, 1300, 1700] : [50];
      const disruptions: Disruption[] = kills.map((atOperation, i) => ({
        atOperation,
        name: i === 0 ? 'SIGKILL after a committed CreateUser + restart' : `SIGKILL #${i + 1} + restart`,
        run:
          i === 0
            ? crashAfterCommittedCreate(killAndWaitOutHeldCreate, restart)
            : async () => {
                await child.kill();
                await restart();
              },
      }));

      const result = await runSoak({
        scimUrl: () => child.scimUrl,
        emulatorUrl: emulator.url,
        token: SOAK_TOKEN,
        seed,
        workers: LONG ? 16 : 8,
        opsPerWorker: LONG ? 150 : 20,
        maxDurationMs: LONG ? 300_000 : 25_000,
        maxUsersPerWorker: LONG ? 10 : 5,
        faults: moderateFaults(LONG ? 1 : 0.5),
        retryBudgetMs: 120_000,
        disruptions,
        log: (line) => console.log(`[restart ${seed}] ${line}`),
      });
      const verification = await verify({
        scimUrl: child.scimUrl,
        emulatorUrl: emulator.url,
        token: SOAK_TOKEN,
        result,
      });
      // The store, read directly once the bridge stopped (a DATA_DIR has one owner at a time).
      await child.stop();
      const store = await openStore(
        env.DATABASE_URL ? { databaseUrl: env.DATABASE_URL } : { dataDir: env.DATA_DIR },
      );
      try {
        const s = await verifyStore(result, store, emulator.url);
        verification.problems.push(...s.problems);
        verification.lost.storeInconsistencies += s.inconsistencies;
        verification.lostTotal += s.inconsistencies;
      } finally {
        await store.close();
      }
      const leaks = secretsInLogs(child.lines, result.secrets);
      notes.push(
        `store: ${storeKind}; bridge started in ${(firstStartMs / 1000).toFixed(1)} s, restarted ${restarts.length}× in ${restarts.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ')}`,
        `log lines scanned for secrets: ${child.lines.length}, with a secret: ${leaks.length}`,
      );
      const summary = summaryLines({
        title: `Kill -9 and restart, child process bridge (${LONG ? 'long' : 'short'})`,
        result,
        verification,
        notes,
      });
      console.log(summary.join('\n'));
      writeReportPart(2, 'restart', summary, {
        operations: result.recorder.stats.operations,
        requests: result.recorder.stats.requests,
        faults: result.faultsFired,
        restarts: restarts.length,
        lost: verification.lostTotal,
        failures: result.recorder.violationCount + leaks.length,
      });

      expect(restarts.length, `seed ${seed}`).toBe(kills.length);
      expect(
        {
          lost: verification.lostTotal,
          problems: verification.problems,
          violations: result.recorder.violations,
          leaks,
        },
        `seed ${seed}`,
      ).toEqual({ lost: 0, problems: [], violations: [], leaks: [] });
    },
    LONG ? 900_000 : 120_000,
  );
});
