// Upgrading from a version whose embedded store was PGlite (WASM PostgreSQL) in DATA_DIR: the first
// start reads every record out of that cluster into the embedded store's first snapshot, so nothing
// a client sent is lost. PGlite is loaded only here, and only when such a cluster is found.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeSnapshot } from './journal.js';
import { MemoryState } from './memory-state.js';
import { readAllRecords, SqlStore } from './sql-store.js';

/** PG_VERSION is the first file initdb writes into a PostgreSQL (and so PGlite) data directory. */
export function isLegacyPGliteDir(dataDir: string): boolean {
  return existsSync(join(dataDir, 'PG_VERSION'));
}

/**
 * Copies users, groups and memberships from the PGlite cluster in `dataDir` into snapshot.json
 * (durably, before anything else is written). Runs only while neither snapshot nor journal exists,
 * so a crash midway simply imports again on the next start. The caller holds the DATA_DIR lock.
 */
export async function importLegacyPGlite(dataDir: string, logger?: Logger): Promise<void> {
  const started = Date.now();
  logger?.info({ dataDir }, 'embedded store: importing the PGlite store of an earlier version');
  let records: Awaited<ReturnType<typeof readAllRecords>>;
  try {
    const { openPGliteDriver } = await import('./pglite-driver.js');
    const driver = await openPGliteDriver(dataDir);
    try {
      // Brings a cluster written by any earlier version to the current schema before reading it.
      await new SqlStore(driver, logger).init();
      records = await readAllRecords(driver);
    } finally {
      await driver.close();
    }
  } catch (e) {
    throw new Error(
      `DATA_DIR ${dataDir} holds a PGlite store of an earlier version that could not be imported (${(e as Error).message}); refusing to start rather than start empty`,
      { cause: e },
    );
  }
  // Through MemoryState for its uniqueness checks, so the snapshot is one the store can load.
  const state = new MemoryState();
  state.load({ seq: 0, ...records });
  await writeSnapshot(dataDir, state.image());
  logger?.info(
    {
      dataDir,
      users: records.users.length,
      groups: records.groups.length,
      memberships: records.memberships.length,
      ms: Date.now() - started,
    },
    'embedded store: imported the PGlite store; its files in DATA_DIR (PG_VERSION, base/, global/, pg_*/, postgresql*.conf) are no longer used and may be removed once a backup is kept',
  );
}
