import type { Logger } from 'pino';
import type { SqlDriver } from './driver.js';
import { openPGliteDriver } from './pglite-driver.js';
import { openPostgresDriver } from './postgres-driver.js';
import { SqlStore } from './sql-store.js';
import type { BridgeStore } from './types.js';

export * from './types.js';

export interface OpenStoreOptions {
  /** PostgreSQL URL (DATABASE_URL). When set, the store lives there, shared by all replicas. */
  databaseUrl?: string;
  /** Embedded PGlite directory (DATA_DIR) when no databaseUrl; default ./data, created if missing. */
  dataDir?: string;
  /** Embedded PGlite in memory, for tests; takes precedence over the other two. */
  inMemory?: boolean;
  logger?: Logger;
}

/** Opens the store on the configured database and brings its schema up to date. */
export async function openStore(opts: OpenStoreOptions = {}): Promise<BridgeStore> {
  let driver: SqlDriver;
  // What gets logged once the store is ready; never the URL, which may carry a password.
  let where: { store: 'pglite' | 'postgres'; dataDir?: string };
  if (opts.inMemory) {
    driver = await openPGliteDriver();
    where = { store: 'pglite', dataDir: ':memory:' };
  } else if (opts.databaseUrl) {
    driver = openPostgresDriver({ connectionString: opts.databaseUrl, logger: opts.logger });
    where = { store: 'postgres' };
  } else {
    const dataDir = opts.dataDir ?? './data';
    driver = await openPGliteDriver({ dataDir });
    where = { store: 'pglite', dataDir };
  }
  const store = new SqlStore(driver, opts.logger);
  try {
    await store.init();
  } catch (err) {
    await driver.close().catch(() => {});
    throw err;
  }
  opts.logger?.info(where, 'store ready');
  return store;
}
