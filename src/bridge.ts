import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { buildApp } from './app.js';
import type { Config } from './config.js';
import { DEV_ACCESS_KEY, DEV_SECRET_KEY, type RunningEmulator, startEmulator } from './emulator/index.js';
import { openStore } from './store/index.js';
import type { BridgeStore } from './store/types.js';
import { CloudIdentityClient } from './volcengine/client.js';

export interface RunningBridge {
  server: Server;
  url: string;
  store: BridgeStore;
  client: CloudIdentityClient;
  emulator?: RunningEmulator;
  /** Stops accepting, lets in-flight requests finish (bounded), closes the pool and the store. */
  close(): Promise<void>;
}

export const generateToken = () => randomBytes(24).toString('base64url');

/** config → (emulator) → store → client → app → listen. */
export async function startBridge(config: Config, logger: Logger): Promise<RunningBridge> {
  let emulator: RunningEmulator | undefined;
  let credentials = config.volcengine;
  let endpoint = config.endpoint;
  if (!credentials) {
    emulator = await startEmulator({
      port: 0,
      region: config.region,
      latencyMs: config.emulatorLatencyMs,
      logger: logger.child({ component: 'emulator' }),
    });
    credentials = { accessKeyId: DEV_ACCESS_KEY, secretAccessKey: DEV_SECRET_KEY };
    endpoint = emulator.url;
  }
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger });
  const client = new CloudIdentityClient({
    ...credentials,
    region: config.region,
    endpoint,
    attemptTimeoutMs: config.upstreamAttemptTimeoutMs,
    maxAttempts: config.upstreamMaxAttempts,
    mutationConcurrency: config.upstreamMutationConcurrency,
    connections: config.upstreamConnections,
    deadlineMs: config.requestDeadlineMs,
    logger: logger.child({ component: 'cloudidentity' }),
  });
  const app = buildApp({ config, api: client, store, logger });
  const server = app.listen(config.port, config.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  // Slowloris protection, and keep-alive longer than typical load-balancer idle timeouts (60 s).
  server.headersTimeout = 20_000;
  server.requestTimeout = config.requestDeadlineMs + 10_000;
  server.keepAliveTimeout = 65_000;
  const { port } = server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return {
    server,
    url: `http://${host}:${port}`,
    store,
    client,
    emulator,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        const timer = setTimeout(() => {
          server.closeAllConnections();
          resolve();
        }, config.shutdownGraceMs);
        timer.unref();
      });
      await client.close();
      await store.close();
      await emulator?.close();
    },
  };
}
