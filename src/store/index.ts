import type { Logger } from 'pino';
import { MemoryStore } from './memory-store.js';
import type { BridgeStore } from './types.js';

export * from './types.js';

export interface OpenStoreOptions {
  /** PostgreSQL URL (DATABASE_URL). When set, the store lives there, shared by all replicas. */
  databaseUrl?: string;
  /** The embedded store's directory (DATA_DIR) when no databaseUrl; default ./data, created if missing. */
  dataDir?: string;
  /** The embedded store without any file, for tests; takes precedence over the other two. */
  inMemory?: boolean;
  logger?: Logger;
}

/** Opens the store: PostgreSQL with its schema brought up to date, or the embedded store loaded. */
export async function openStore(opts: OpenStoreOptions = {}): Promise<BridgeStore> {
  let store: BridgeStore;
  // What gets logged once the store is ready; never the URL, which may carry a password.
  let where: { store: 'embedded' | 'postgres'; dataDir?: string };
  if (opts.inMemory) {
    store = await MemoryStore.open({ logger: opts.logger });
    where = { store: 'embedded', dataDir: ':memory:' };
  } else if (opts.databaseUrl) {
    // Loaded only here: the embedded store needs neither pg nor the SQL layer.
    const [{ openPostgresDriver }, { SqlStore }] = await Promise.all([
      import('./postgres-driver.js'),
      import('./sql-store.js'),
    ]);
    const driver = openPostgresDriver({ connectionString: opts.databaseUrl, logger: opts.logger });
    const sql = new SqlStore(driver, opts.logger);
    try {
      await sql.init();
    } catch (err) {
      await driver.close().catch(() => {});
      throw err;
    }
    store = sql;
    where = { store: 'postgres' };
  } else {
    const dataDir = opts.dataDir ?? './data';
    store = await MemoryStore.open({ dataDir, logger: opts.logger });
    where = { store: 'embedded', dataDir };
  }
  opts.logger?.info(where, 'store ready');
  return store;
}
