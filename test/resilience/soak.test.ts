// Bounded soak against the in-process bridge (real HTTP on loopback, in-memory store) while the
// emulator injects throttling, 5xx, ConcurrentException, resets before and after commit and latency.
// `npm test` runs a short version (~250 operations); `npm run test:resilience` a minutes-long one.
// A failure prints the seed: SOAK_SEED=<seed> replays the same workload (the faults stay random).
// SOAK_FAULT_SCALE=2.5 multiplies the fault probabilities; SOAK_DUMP_LOGS=<file> writes the bridge log.
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { type InProcessBridge, SOAK_TOKEN, startInProcessBridge } from './bridges.js';
import { LONG, seedFromEnv, writeReportPart } from './report.js';
import { moderateFaults, runSoak, secretsInLogs, summaryLines, verify } from './soak.js';

const seed = seedFromEnv();

describe(`soak under injected faults (in-process bridge, seed ${seed})`, () => {
  let bridge: InProcessBridge | undefined;
  afterAll(async () => {
    await bridge?.close();
  });

  it(
    'Entra- and Okta-shaped clients converge: nothing lost, no duplicate, every answer valid SCIM',
    async () => {
      bridge = await startInProcessBridge({ upstreamMaxAttempts: 2 });
      const b = bridge;
      const result = await runSoak({
        scimUrl: () => b.scimUrl,
        emulatorUrl: b.emulator.url,
        token: SOAK_TOKEN,
        seed,
        workers: LONG ? 16 : 12,
        opsPerWorker: LONG ? 400 : 20,
        maxDurationMs: LONG ? 180_000 : 35_000,
        maxUsersPerWorker: LONG ? 10 : 5,
        faults: moderateFaults(Number(process.env.SOAK_FAULT_SCALE ?? 1)),
        log: (line) => console.log(`[soak ${seed}] ${line}`),
      });
      const verification = await verify({
        scimUrl: b.scimUrl,
        emulatorUrl: b.emulator.url,
        token: SOAK_TOKEN,
        result,
        store: b.store,
      });
      const leaks = secretsInLogs(b.logs, result.secrets);
      if (process.env.SOAK_DUMP_LOGS) writeFileSync(process.env.SOAK_DUMP_LOGS, b.logs.join(''));
      const section = {
        title: `Soak, in-process bridge, in-memory store (${LONG ? 'long' : 'short'})`,
        result,
        verification,
        notes: [`log lines scanned for secrets: ${b.logs.length}, with a secret: ${leaks.length}`],
      };
      const summary = summaryLines(section);
      console.log(summary.join('\n'));
      writeReportPart(1, 'soak', summary, {
        operations: result.recorder.stats.operations,
        requests: result.recorder.stats.requests,
        faults: result.faultsFired,
        lost: verification.lostTotal,
        failures: result.recorder.violationCount + leaks.length,
      });

      expect(result.recorder.stats.operations, `seed ${seed}`).toBeGreaterThan(LONG ? 1000 : 100);
      expect(result.faultsFired, `seed ${seed}`).toBeGreaterThan(0);
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
    LONG ? 600_000 : 90_000,
  );
});
