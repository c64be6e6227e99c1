// Reconciler leadership on PostgreSQL when its holder was frozen past the lease: on waking, before
// any of its timers ran, the lease already says lost (PostgreSQL has ended the idle session and
// freed the lock), and another store takes the lead. The reconciler checks this right before each
// commit of a settle, so a frozen leader commits nothing once another replica may lead.
import { afterAll, describe, expect, it } from 'vitest';
import { openPostgresDriver } from '../../src/store/postgres-driver.js';
import { SqlStore } from '../../src/store/sql-store.js';
import { freshPostgresUrl } from '../helpers/postgres.js';

const pgSchema = await freshPostgresUrl('lease_test');
const skip = 'skip' in pgSchema ? pgSchema.skip : undefined;
if (skip) console.warn(`[skip] leader lease test not run: ${skip}`);
afterAll(async () => {
  if ('url' in pgSchema) await pgSchema.drop();
});

const LEASE_MS = 1000;

/** Blocks the event loop, as a frozen process (no timer, no socket read) would be. */
function freeze(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy: nothing else runs
  }
}

describe.skipIf(skip !== undefined)('leader lease (PostgreSQL)', () => {
  it('a leader frozen past its lease finds it lost on waking, and another store leads', async () => {
    if (!('url' in pgSchema)) throw new Error('unreachable: suite is skipped');
    const drivers = [0, 1].map(() => openPostgresDriver({ connectionString: pgSchema.url }));
    try {
      const [first, second] = drivers.map((d) => new SqlStore(d, undefined, { lockLeaseMs: LEASE_MS }));
      await first.init();
      const lead = await first.tryLeadership!('fencing-test');
      expect(lead).not.toBeNull();
      expect(await second.tryLeadership!('fencing-test')).toBeNull();
      expect(lead!.lost()).toBe(false);
      freeze(LEASE_MS * 1.5);
      // Synchronously on waking: no heartbeat ran, yet the lease counts as lost.
      expect(lead!.lost()).toBe(true);
      let taken: Awaited<ReturnType<NonNullable<SqlStore['tryLeadership']>>> = null;
      for (let i = 0; i < 50 && !taken; i++) {
        taken = await second.tryLeadership!('fencing-test');
        if (!taken) await new Promise((r) => setTimeout(r, 100));
      }
      expect(taken, 'PostgreSQL freed the frozen leader').not.toBeNull();
      await lead!.release();
      await taken!.release();
    } finally {
      for (const d of drivers) await d.close();
    }
  });
});
