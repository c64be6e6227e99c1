// Opening the store: SQLite in DATA_DIR by default (one bridge), PostgreSQL when DATABASE_URL is set
// (several replicas). Both are bound to the CloudIdentity they mirror (binding.ts).
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { bindUpstream, type CloudIdentity, describeUpstream, type StoreMeta } from './binding.js';
import { openEmbeddedStore } from './data-dir.js';
import { checkFirstStart, type UpstreamHoldings } from './first-start.js';
import { prepareDatabase, SqliteStore } from './sqlite-store.js';
import type { BridgeStore } from './types.js';

export * from './audit-types.js';
export type { CloudIdentity } from './binding.js';
export type { UpstreamHoldings } from './first-start.js';
export { inspectStore, type StoreInspection } from './inspect.js';
export * from './types.js';

export interface OpenStoreOptions {
  /** PostgreSQL URL (DATABASE_URL). When set, the store lives there, shared by all replicas. */
  databaseUrl?: string;
  /** PostgreSQL: STORE_LOCK_LEASE_MS, how long a frozen or cut-off replica keeps its locks. */
  lockLeaseMs?: number;
  /** The embedded store's directory (DATA_DIR) when no databaseUrl; default ./data, created if missing. */
  dataDir?: string;
  /** An embedded store in memory (SQLite :memory:), for tests; takes precedence over the other two. */
  inMemory?: boolean;
  /**
   * The CloudIdentity this bridge talks to: recorded on first start, a different one refused
   * (StoreBindingError). Omitted (tools, tests): the binding is neither checked nor recorded.
   */
  upstream?: CloudIdentity;
  /** --rebind-store: record `upstream` even though the store mirrors another CloudIdentity. */
  rebind?: boolean;
  /** --accept-empty-store: start even though the embedded store lost its records or its file. */
  acceptEmptyStore?: boolean;
  /** --reuse-moved-store: serve an embedded store that `store copy` moved to PostgreSQL. */
  reuseMovedStore?: boolean;
  logger?: Logger;
}

export interface BindStoreOptions extends Pick<OpenStoreOptions, 'databaseUrl' | 'dataDir' | 'inMemory'> {
  upstream: CloudIdentity;
  rebind?: boolean;
  acceptEmptyStore?: boolean;
  logger?: Logger;
  /** What CloudIdentity already holds: given, a new empty store facing a populated one is refused. */
  upstreamHoldings?: () => Promise<UpstreamHoldings>;
}

/**
 * Binds an open store to the CloudIdentity it mirrors (binding.ts) and, with upstreamHoldings,
 * refuses a new empty store facing a CloudIdentity that already holds users (first-start.ts).
 */
export async function bindStore(store: BridgeStore, opts: BindStoreOptions): Promise<void> {
  const meta = store as BridgeStore & StoreMeta;
  const place = opts.inMemory
    ? { where: 'memory', fresh: 'a new store', setting: 'DATA_DIR' as const }
    : opts.databaseUrl
      ? {
          where: 'the PostgreSQL database of DATABASE_URL',
          fresh: 'a new database (or schema) in DATABASE_URL',
          setting: 'DATABASE_URL' as const,
        }
      : {
          where: `DATA_DIR ${opts.dataDir ?? './data'}`,
          fresh: 'a new DATA_DIR',
          setting: 'DATA_DIR' as const,
        };
  await bindUpstream(meta, opts.upstream, {
    rebind: opts.rebind,
    logger: opts.logger,
    where: place.where,
    fresh: place.fresh,
  });
  if (opts.upstreamHoldings) {
    await checkFirstStart(meta, {
      upstreamHoldings: opts.upstreamHoldings,
      acceptEmptyStore: opts.acceptEmptyStore,
      logger: opts.logger,
      setting: place.setting,
      where: place.where,
      upstream: describeUpstream(opts.upstream),
    });
  }
}

/** Opens the store: PostgreSQL with its schema brought up to date, or the embedded store in DATA_DIR. */
export async function openStore(opts: OpenStoreOptions = {}): Promise<BridgeStore> {
  const logger = opts.logger;
  // What gets logged once the store is ready; never the URL, which may carry a password.
  let where: { store: 'embedded' | 'postgres'; dataDir?: string };
  if (opts.inMemory) {
    const db = new Database(':memory:');
    prepareDatabase(db, logger);
    const store = new SqliteStore(db, { logger });
    if (opts.upstream) await bindStore(store, { ...opts, upstream: opts.upstream });
    logger?.info({ store: 'embedded', dataDir: ':memory:' }, 'store ready');
    return store;
  }
  if (opts.databaseUrl) {
    // Loaded only here: the embedded store needs neither pg nor its SQL layer.
    const [{ openPostgresDriver, startupError }, { SqlStore }] = await Promise.all([
      import('./postgres-driver.js'),
      import('./sql-store.js'),
    ]);
    const driver = openPostgresDriver({ connectionString: opts.databaseUrl, logger });
    const sql = new SqlStore(driver, logger, { lockLeaseMs: opts.lockLeaseMs });
    try {
      await sql.init();
      if (opts.upstream) await bindStore(sql, { ...opts, upstream: opts.upstream });
    } catch (err) {
      await driver.close().catch(() => {});
      throw startupError(err, opts.databaseUrl);
    }
    where = { store: 'postgres' };
    logger?.info(where, 'store ready');
    return sql;
  }
  const dataDir = opts.dataDir ?? './data';
  const started = Date.now();
  const store = openEmbeddedStore({
    dataDir,
    logger,
    acceptEmptyStore: opts.acceptEmptyStore,
    reuseMovedStore: opts.reuseMovedStore,
  });
  try {
    if (opts.upstream) await bindStore(store, { ...opts, dataDir, upstream: opts.upstream });
  } catch (err) {
    await store.close();
    throw err;
  }
  logger?.info({ store: 'embedded', dataDir, ms: Date.now() - started }, 'store ready');
  return store;
}
