import { Writable } from 'node:stream';
import type { Express } from 'express';
import supertest from 'supertest';
import { buildApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import { buildDirectories } from '../../src/directory/index.js';
import type { Reconciler } from '../../src/directory/reconciler.js';
import { ResourceLocks } from '../../src/directory/resource-locks.js';
import {
  DEV_ACCESS_KEY,
  DEV_SECRET_KEY,
  type EmulatorOptions,
  type RunningEmulator,
  startEmulator,
} from '../../src/emulator/index.js';
import { createLogger } from '../../src/logger.js';
import { instrumentStore, type Metrics } from '../../src/ops/metrics.js';
import { Readiness } from '../../src/ops/readiness.js';
import { openStore } from '../../src/store/index.js';
import type { BridgeStore } from '../../src/store/types.js';
import { CloudIdentityClient } from '../../src/volcengine/client.js';
import type { CloudIdentityApi } from '../../src/volcengine/types.js';
import { freshPostgresUrl } from './postgres.js';

export const TEST_TOKEN = 'test-token-0123456789abcdef';

export interface Harness {
  /** supertest agent bound to the app (no listening port needed) */
  http: supertest.Agent;
  /** the app itself, for requests without the agent's cookie jar or default token */
  app: Express;
  emulator: RunningEmulator;
  store: BridgeStore;
  client: CloudIdentityClient;
  config: Config;
  /** every log line the bridge wrote, as text */
  logs: string[];
  /** the metrics passed in HarnessOptions.metrics, if any */
  metrics?: Metrics;
  /** the bridge's per-resource write locks (to see a request queue behind another) */
  locks: ResourceLocks;
  /** the reconciler (not started: tests drive it with runOnce) */
  reconciler: Reconciler;
  /** runOnce (backoff ignored) until no intent is pending; throws if they never settle */
  settle(): Promise<void>;
  /** the PostgreSQL URL (its schema) when store is 'postgres' */
  databaseUrl?: string;
  /** emulator state through its control API */
  upstream(): Promise<EmulatorSnapshot>;
  close(): Promise<void>;
}

export interface EmulatorSnapshot {
  users: Array<Record<string, string>>;
  groups: Array<Record<string, string>>;
  memberships: Array<{ GroupId: string; UserId: string }>;
  calls: Record<string, number>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  emulator?: EmulatorOptions;
  /** 'embedded' (SQLite in memory, no DATA_DIR) or 'postgres' (fresh schema on the test server) */
  store?: StoreKind;
  /** Instrument the client (observer), the store (timing proxy) and the app with these metrics. */
  metrics?: Metrics;
  /** Wraps the store the app uses (e.g. to fail one write after an upstream call committed). */
  wrapStore?: (store: BridgeStore) => BridgeStore;
  /** Wraps the CloudIdentity client the app uses (e.g. to hold a call at an exact point). */
  wrapApi?: (api: CloudIdentityApi) => CloudIdentityApi;
  /**
   * A second bridge on the same emulator and the same store (PostgreSQL: the same schema) as `peer`,
   * like two replicas. `store` is taken from the peer; closing this one leaves the peer's intact.
   */
  peer?: Harness;
  /** With store 'postgres' (or a peer): the URL the bridge connects to, from the schema's (e.g. through a proxy). */
  databaseUrlVia?: (url: string) => string;
  /** Run readiness checks in the background, as a started bridge does (liveness and the ready gauge follow them). */
  backgroundReadiness?: boolean;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const config = loadConfig(
    { SCIM_BEARER_TOKENS: TEST_TOKEN, LOG_LEVEL: 'debug', REQUEST_DEADLINE_MS: '15000', ...options.env },
    () => TEST_TOKEN,
  );
  const logger = createLogger({ level: 'debug', logPii: config.logPii, destination });
  const peer = options.peer;
  const emulator = peer ? peer.emulator : await startEmulator({ port: 0, ...options.emulator });
  let dropSchema: (() => Promise<void>) | undefined;
  let store: BridgeStore;
  let databaseUrl: string | undefined;
  if (peer) {
    if (!peer.databaseUrl)
      throw new Error('a peer bridge needs a PostgreSQL peer (the embedded store is one per DATA_DIR)');
    databaseUrl = peer.databaseUrl;
    store = await openStore({
      databaseUrl: options.databaseUrlVia ? options.databaseUrlVia(databaseUrl) : databaseUrl,
      lockLeaseMs: config.storeLockLeaseMs,
      logger,
    });
  } else if (options.store === 'postgres') {
    const pg = await freshPostgresUrl();
    if ('skip' in pg) throw new Error(`PostgreSQL unavailable: ${pg.skip}`);
    dropSchema = pg.drop;
    databaseUrl = options.databaseUrlVia ? options.databaseUrlVia(pg.url) : pg.url;
    store = await openStore({ databaseUrl, lockLeaseMs: config.storeLockLeaseMs, logger });
  } else {
    store = await openStore({ inMemory: true, logger });
  }
  if (options.metrics) store = instrumentStore(store, options.metrics);
  const rawStore = store;
  const appStore = options.wrapStore ? options.wrapStore(store) : store;
  const client = new CloudIdentityClient({
    accessKeyId: DEV_ACCESS_KEY,
    secretAccessKey: DEV_SECRET_KEY,
    endpoint: emulator.url,
    baseDelayMs: 5,
    maxDelayMs: 50,
    logger: logger.child({ component: 'cloudidentity' }),
    observer: options.metrics?.clientObserver,
  });
  const locks = new ResourceLocks();
  const api = options.wrapApi ? options.wrapApi(client) : client;
  const directories = buildDirectories({
    config,
    api,
    store: appStore,
    logger,
    metrics: options.metrics,
    locks,
  });
  const readiness = new Readiness({
    store: appStore,
    api,
    cacheMs: config.readinessCacheMs,
    livenessStoreTimeoutMs: config.livenessStoreTimeoutMs,
    logger,
    onResult: (ready) => options.metrics?.ready.set(ready ? 1 : 0),
  });
  if (options.backgroundReadiness) readiness.start();
  const app = buildApp({
    config,
    api,
    store: appStore,
    logger,
    metrics: options.metrics,
    readiness,
    locks,
    directories,
  });
  const http = supertest.agent(app).set('Authorization', `Bearer ${TEST_TOKEN}`);
  return {
    http,
    app,
    emulator,
    store,
    client,
    config,
    logs,
    metrics: options.metrics,
    locks,
    reconciler: directories.reconciler,
    databaseUrl,
    async settle() {
      for (let round = 0; round < 20; round++) {
        const r = await directories.reconciler.runOnce({ ignoreBackoff: true });
        if (r.pending === 0) return;
      }
      throw new Error(`intents still pending after 20 reconciler runs: ${await store.countIntents()}`);
    },
    async upstream() {
      const res = await fetch(`${emulator.url}/_emulator/state`);
      return (await res.json()) as EmulatorSnapshot;
    },
    async close() {
      readiness.stop();
      await directories.reconciler.stop();
      await client.close();
      await rawStore.close();
      if (!peer) await emulator.close();
      await dropSchema?.();
    },
  };
}

export type StoreKind = 'embedded' | 'postgres';

/** Which stores the same suite runs against: the embedded one always, PostgreSQL when reachable. */
export async function storeKinds(): Promise<StoreKind[]> {
  const pg = await freshPostgresUrl();
  if ('skip' in pg) {
    console.warn(`[skip] PostgreSQL store variant not run: ${pg.skip}`);
    return ['embedded'];
  }
  await pg.drop();
  return ['embedded', 'postgres'];
}
