// Small pieces shared by the ops tests: an app over a fake or real store and a real client.
import { Writable } from 'node:stream';
import pino from 'pino';
import supertest from 'supertest';
import { buildApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import { DEV_ACCESS_KEY, DEV_SECRET_KEY } from '../../src/emulator/index.js';
import { createLogger } from '../../src/logger.js';
import { Metrics } from '../../src/ops/metrics.js';
import type { Readiness } from '../../src/ops/readiness.js';
import type { BridgeStore } from '../../src/store/types.js';
import { CloudIdentityClient, type CloudIdentityClientOptions } from '../../src/volcengine/client.js';
import { TEST_TOKEN } from '../helpers/harness.js';

export { TEST_TOKEN };

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig(
    { SCIM_BEARER_TOKENS: TEST_TOKEN, REQUEST_DEADLINE_MS: '15000', ...env },
    () => TEST_TOKEN,
  );
}

/** A store whose only working method is ping(); enough for the ops routes. */
export function pingOnlyStore(ping: () => Promise<void>): BridgeStore & { pings: number } {
  const store = {
    pings: 0,
    async ping() {
      store.pings++;
      await ping();
    },
    async close() {},
    writeFailureReason: () => null,
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop in target) return Reflect.get(target, prop);
      return () => Promise.reject(new Error(`fake store: ${String(prop)} not implemented`));
    },
  }) as unknown as BridgeStore & { pings: number };
}

export function emulatorClient(url: string, extra: Partial<CloudIdentityClientOptions> = {}) {
  return new CloudIdentityClient({
    accessKeyId: DEV_ACCESS_KEY,
    secretAccessKey: DEV_SECRET_KEY,
    endpoint: url,
    baseDelayMs: 5,
    maxDelayMs: 20,
    maxAttempts: 2,
    ...extra,
  });
}

export interface OpsApp {
  http: supertest.Agent;
  metrics: Metrics;
  logs: string[];
}

export function opsApp(opts: {
  store: BridgeStore;
  client: CloudIdentityClient;
  env?: Record<string, string>;
  readiness?: Readiness;
  metrics?: Metrics;
}): OpsApp {
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const config = testConfig(opts.env);
  const logger = createLogger({ level: 'debug', logPii: config.logPii, destination });
  const metrics = opts.metrics ?? new Metrics({ defaultMetrics: false });
  const app = buildApp({
    config,
    api: opts.client,
    store: opts.store,
    logger,
    metrics,
    readiness: opts.readiness,
  });
  return { http: supertest.agent(app), metrics, logs };
}

export const silentLogger = pino({ level: 'silent' });

/** Parsed JSON log lines. */
export function parseLogs(logs: string[]): Array<Record<string, unknown>> {
  return logs.flatMap((chunk) =>
    chunk
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
}

/** The value of one sample in Prometheus text format, or undefined. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const pair of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got[pair[1]] = pair[2];
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}
