// Real parts for tests of the domain (src/directory, src/audit) below the HTTP surface: a store
// (SQLite in memory, or a fresh PostgreSQL schema on the test server), the emulator over HTTP with
// the real CloudIdentity client, and the RequestContext a SCIM request carries.
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { scimStatus } from '../../src/audit/entry.js';
import type { RequestContext } from '../../src/directory/context.js';
import {
  DEV_ACCESS_KEY,
  DEV_SECRET_KEY,
  type EmulatorOptions,
  type RunningEmulator,
  startEmulator,
} from '../../src/emulator/index.js';
import { createLogger } from '../../src/logger.js';
import type { AuditUpstreamCall } from '../../src/store/audit-types.js';
import { openStore } from '../../src/store/index.js';
import type { BridgeStore } from '../../src/store/types.js';
import { CloudIdentityClient } from '../../src/volcengine/client.js';
import type { UpstreamCallLog } from '../../src/volcengine/types.js';
import type { StoreKind } from './harness.js';
import { freshPostgresUrl } from './postgres.js';

export { type StoreKind, storeKinds } from './harness.js';

export interface TestStore {
  store: BridgeStore;
  close(): Promise<void>;
}

/** A store of this kind: SQLite in memory, or PostgreSQL in a schema of its own (dropped on close). */
export async function openTestStore(kind: StoreKind): Promise<TestStore> {
  const logger = pino({ level: 'silent' });
  if (kind === 'embedded') {
    const store = await openStore({ inMemory: true, logger });
    return { store, close: () => store.close() };
  }
  const pg = await freshPostgresUrl('domain');
  if ('skip' in pg) throw new Error(`PostgreSQL unavailable: ${pg.skip}`);
  const store = await openStore({ databaseUrl: pg.url, logger });
  return {
    store,
    async close() {
      await store.close();
      await pg.drop();
    },
  };
}

export interface TestContext {
  ctx: RequestContext;
  /** Every log line written through ctx.log, as parsed JSON. */
  logs: Array<Record<string, unknown>>;
  /** The CloudIdentity calls the origin reports (push to add one). */
  calls: AuditUpstreamCall[];
}

/** The context of a SCIM request by `actor` (statuses as the SCIM routes answer them). */
export function testContext(
  over: { actor?: string; method?: string; deadlineMs?: number } = {},
): TestContext {
  const logs: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logs.push(JSON.parse(String(chunk)));
      cb();
    },
  });
  const calls: AuditUpstreamCall[] = [];
  const startedAt = Date.now();
  // The client appends to `calls` too: the log the operation's calls pass.
  const upstream: UpstreamCallLog = { requestIds: [], calls };
  const ctx: RequestContext = {
    deadlineAt: startedAt + (over.deadlineMs ?? 15_000),
    log: createLogger({ level: 'debug', logPii: false, destination }),
    origin: {
      actor: over.actor ?? 'test-idp',
      clientIp: '127.0.0.1',
      requestId: `req-${randomUUID()}`,
      method: over.method ?? 'POST',
      startedAt,
      upstreamCalls: () => calls,
      statusOf: scimStatus,
    },
    upstream,
  };
  return { ctx, logs, calls };
}

export interface Upstream {
  emulator: RunningEmulator;
  api: CloudIdentityClient;
  close(): Promise<void>;
}

/** The emulator on an ephemeral port and the real client talking to it over HTTP. */
export async function startUpstream(options: EmulatorOptions = {}): Promise<Upstream> {
  const emulator = await startEmulator({ port: 0, ...options });
  const api = new CloudIdentityClient({
    accessKeyId: DEV_ACCESS_KEY,
    secretAccessKey: DEV_SECRET_KEY,
    endpoint: emulator.url,
    baseDelayMs: 5,
    maxDelayMs: 50,
    logger: pino({ level: 'silent' }),
  });
  return {
    emulator,
    api,
    async close() {
      await api.close();
      await emulator.close();
    },
  };
}
