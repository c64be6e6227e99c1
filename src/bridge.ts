import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerOptions,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { buildApp } from './app.js';
import { AuditRetention } from './audit/retention.js';
import type { Config } from './config.js';
import { buildDirectories } from './directory/index.js';
import type { Reconciler } from './directory/reconciler.js';
import { DEV_ACCESS_KEY, DEV_SECRET_KEY, type RunningEmulator, startEmulator } from './emulator/index.js';
import { instrumentStore, Metrics } from './ops/metrics.js';
import { RateLimits } from './ops/rate-limits.js';
import { Readiness } from './ops/readiness.js';
import { bothObservers, UpstreamActivity } from './ops/upstream-activity.js';
import { ERROR_SCHEMA } from './scim-model/scim-error.js';
import { bindStore, type CloudIdentity, openStore } from './store/index.js';
import type { BridgeStore } from './store/types.js';
import { keepTrialToken, type TrialToken } from './trial-token.js';
import { CloudIdentityClient } from './volcengine/client.js';

export interface RunningBridge {
  server: Server | HttpsServer;
  url: string;
  /** The port listened on (PORT, or the one chosen for PORT=0). */
  port: number;
  /**
   * Re-reads TLS_CERT_FILE and TLS_KEY_FILE into the running server (SIGHUP): new connections get the
   * new certificate, open ones keep theirs. Throws, leaving the old one in place, when the files are
   * unreadable or do not form a pair. A no-op without TLS.
   */
  reloadTls(): void;
  store: BridgeStore;
  client: CloudIdentityClient;
  metrics: Metrics;
  readiness: Readiness;
  reconciler: Reconciler;
  /** Background pruning of audit records past AUDIT_RETENTION_DAYS. */
  retention: AuditRetention;
  /** SCIM, console sign-in and CloudIdentity limits (shared through PostgreSQL with DATABASE_URL). */
  rateLimits: RateLimits;
  emulator?: RunningEmulator;
  /** The configuration in effect (the kept trial token in scimTokens). */
  config: Config;
  /** Without credentials and SCIM_BEARER_TOKENS: the SCIM token kept in DATA_DIR. */
  trialToken?: TrialToken;
  /** Requests being served right now. */
  inFlight(): number;
  /**
   * Readiness turns 503, then (after SHUTDOWN_DELAY_MS) the listener closes, in-flight requests
   * finish (bounded by SHUTDOWN_GRACE_MS), and the pool and the store close. Idempotent.
   */
  close(): Promise<void>;
}

export const generateToken = () => randomBytes(24).toString('base64url');

/** Bounds for each close step after the grace period, so a stuck dependency cannot hang the exit. */
const CLOSE_STEP_MS = 5_000;

export interface StartOptions {
  /** --rebind-store: bind the store to this CloudIdentity even though it mirrors another one. */
  rebindStore?: boolean;
  /**
   * --accept-empty-store: start even though the embedded store lost records or its file, or a new
   * empty store faces a CloudIdentity that already holds users.
   */
  acceptEmptyStore?: boolean;
  /** --reuse-moved-store: serve an embedded store that `store copy` moved to PostgreSQL. */
  reuseMovedStore?: boolean;
}

/** config → store → (emulator) → client → app → listen. */
export async function startBridge(
  given: Config,
  logger: Logger,
  options: StartOptions = {},
): Promise<RunningBridge> {
  let config = given;
  // The store first: it takes DATA_DIR's lock, so a second bridge is refused before it touches
  // anything else there (the in-process emulator's state file lives in DATA_DIR too). It is bound
  // to its CloudIdentity once that is known (the in-process emulator's instance, below).
  const metrics = new Metrics();
  const opened = await openStore({
    databaseUrl: config.databaseUrl,
    lockLeaseMs: config.storeLockLeaseMs,
    dataDir: config.dataDir,
    logger,
    acceptEmptyStore: options.acceptEmptyStore,
    reuseMovedStore: options.reuseMovedStore,
  });
  let emulator: RunningEmulator | undefined;
  let credentials = config.volcengine;
  let endpoint = config.endpoint;
  let trialToken: TrialToken | undefined;
  if (!credentials) {
    // With DATA_DIR's lock held (embedded store) no other bridge writes the file meanwhile.
    if (config.scimTokenGenerated) {
      trialToken = keepTrialToken(config.dataDir, config.scimTokens[0], logger);
      config = { ...config, scimTokens: [trialToken.token] };
    }
    try {
      emulator = await startEmulator({
        port: config.emulatorPort,
        region: config.region,
        latencyMs: config.emulatorLatencyMs,
        logger: logger.child({ component: 'emulator' }),
        // Its users and groups live next to the store's, so a restart finds both (docs/emulator.md).
        stateFile: join(config.dataDir, 'emulator.sqlite'),
      });
    } catch (err) {
      await opened.close();
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new Error(
          `EMULATOR_PORT: port ${config.emulatorPort} is in use; choose another, or 0 for any free port`,
          { cause: err },
        );
      }
      throw err;
    }
    credentials = { accessKeyId: DEV_ACCESS_KEY, secretAccessKey: DEV_SECRET_KEY };
    endpoint = emulator.url;
  }
  let rateLimits: RateLimits;
  try {
    rateLimits = await RateLimits.open(config.rateLimits, {
      databaseUrl: config.databaseUrl,
      metrics,
      logger,
    });
  } catch (err) {
    await Promise.all([opened.close(), emulator?.close()]);
    throw err;
  }
  const upstreamActivity = new UpstreamActivity();
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
    observer: bothObservers(metrics.clientObserver, upstreamActivity.observer),
    pacer: rateLimits.upstream,
  });
  try {
    await bindStore(opened, {
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      upstream: upstreamOf(config, emulator),
      rebind: options.rebindStore,
      acceptEmptyStore: options.acceptEmptyStore,
      logger,
      // The in-process emulator is asked directly: its counts need no round trip (nor its latency).
      upstreamHoldings: async () =>
        emulator ? emulator.counts() : upstreamHoldings(client, config.requestDeadlineMs),
    });
  } catch (err) {
    await Promise.all([client.close(), opened.close(), emulator?.close(), rateLimits.close()]);
    throw err;
  }
  const store = instrumentStore(opened, metrics);
  const readiness = new Readiness({
    store,
    api: client,
    upstreamActivity,
    cacheMs: config.readinessCacheMs,
    livenessStoreTimeoutMs: config.livenessStoreTimeoutMs,
    logger,
    onResult: (ready) => metrics.ready.set(ready ? 1 : 0),
  });
  const directories = buildDirectories({ config, api: client, store, logger, metrics });
  const app = buildApp({
    config,
    api: client,
    store,
    logger,
    metrics,
    readiness,
    directories,
    rateLimits,
    emulator: emulator !== undefined || credentials.accessKeyId === DEV_ACCESS_KEY,
  });

  // Slowloris protection: a request must deliver its headers within HTTP_HEADERS_TIMEOUT_MS and
  // finish within the SCIM deadline plus a margin; the server checks every second instead of the
  // default 30 s. Keep-alive outlives load-balancer idle timeouts (ALB 60 s; set 620 s behind a
  // Google Cloud load balancer) so the balancer never reuses a connection the bridge just closed.
  const serverOptions: ServerOptions = {
    connectionsCheckingInterval: Math.min(1_000, config.httpHeadersTimeoutMs),
    headersTimeout: config.httpHeadersTimeoutMs,
    requestTimeout: Math.max(config.requestDeadlineMs + 10_000, config.httpHeadersTimeoutMs),
    keepAliveTimeout: config.httpKeepAliveTimeoutMs,
  };
  let server: Server | HttpsServer;
  try {
    server = config.tls
      ? createHttpsServer({ ...serverOptions, ...readTls(config.tls) })
      : createServer(serverOptions);
  } catch (err) {
    await Promise.all([client.close(), store.close(), emulator?.close(), rateLimits.close()]);
    throw err;
  }
  // Registered before the app so it sees every request first. With shouldKeepAlive false Node
  // answers `Connection: close`: during the drain no client reuses a connection about to go away.
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  // One listener function for every response (`this` is the response): nothing made per request.
  function responseClosed(this: ServerResponse) {
    inFlight.delete(this);
    if (draining) server.closeIdleConnections();
  }
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    inFlight.add(res);
    if (draining) res.shouldKeepAlive = false;
    // 'close' is emitted once per response.
    res.on('close', responseClosed);
  });
  server.on('request', app);
  server.on('clientError', answerClientError);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch(async (err) => {
    await client.close();
    await rateLimits.close();
    await store.close();
    await emulator?.close();
    throw err;
  });
  // Settles what requests (or a crash before this start) left half-done; stopped before the store closes.
  directories.reconciler.start();
  // Keeps scim_bridge_ready and liveness current without probes; stopped by markShuttingDown.
  readiness.start();
  const { port } = server.address() as AddressInfo;
  const retention = new AuditRetention({
    store,
    retentionDays: config.auditRetentionDays,
    logger: logger.child({ component: 'audit-retention' }),
  });
  retention.start();
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;

  let closing: Promise<void> | undefined;
  const close = async () => {
    readiness.markShuttingDown();
    if (config.shutdownDelayMs > 0) await sleep(config.shutdownDelayMs);
    draining = true;
    for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
    let closed = false;
    const drained = await new Promise<boolean>((resolve) => {
      // At the deadline only unfinished requests count as cut off, not idle keep-alive sockets.
      const timer = setTimeout(() => resolve(inFlight.size === 0), config.shutdownGraceMs);
      server.close(() => {
        closed = true;
        clearTimeout(timer);
        resolve(true);
      });
      server.closeIdleConnections();
    });
    if (!drained) {
      logger.warn(
        { inFlight: inFlight.size, graceMs: config.shutdownGraceMs },
        'shutdown grace period over: closing the remaining connections',
      );
    }
    if (!closed) server.closeAllConnections();
    await retention.stop();
    const clean = [
      await step(logger, 'reconciler', directories.reconciler.stop()),
      // Not drained: abandoned handlers may still wait on CloudIdentity; do not wait for them long.
      await step(logger, 'CloudIdentity pool', client.close(), drained ? CLOSE_STEP_MS : 1_000),
      await step(logger, 'rate limits', rateLimits.close()),
      await step(logger, 'store', store.close()),
      emulator ? await step(logger, 'emulator', emulator.close()) : true,
    ];
    if (!drained || clean.includes(false)) {
      throw new Error(
        drained
          ? 'shutdown: a dependency did not close cleanly'
          : 'shutdown: in-flight requests were cut off',
      );
    }
  };

  return {
    server,
    url: `${config.tls ? 'https' : 'http'}://${host}:${port}`,
    port,
    reloadTls() {
      if (!config.tls || !('setSecureContext' in server)) return;
      server.setSecureContext(readTls(config.tls));
    },
    store,
    client,
    metrics,
    readiness,
    reconciler: directories.reconciler,
    retention,
    rateLimits,
    emulator,
    config,
    trialToken,
    inFlight: () => inFlight.size,
    close() {
      closing ??= close();
      return closing;
    },
  };
}

/**
 * The CloudIdentity the store is bound to: the configured account, or the in-process emulator
 * (named by its instance once it runs; without it, any emulator matches).
 */
export function upstreamOf(config: Config, emulator?: RunningEmulator): CloudIdentity {
  return config.volcengine
    ? {
        kind: 'volcengine',
        endpoint: config.endpoint,
        region: config.region,
        accessKeyId: config.volcengine.accessKeyId,
      }
    : { kind: 'emulator', ...(emulator ? { instance: emulator.instanceId } : {}) };
}

/** How many users and groups CloudIdentity holds (one page each), for a new store's first start. */
async function upstreamHoldings(
  client: CloudIdentityClient,
  deadlineMs: number,
): Promise<{ users: number; groups: number }> {
  const opts = { deadlineAt: Date.now() + Math.min(deadlineMs, 15_000) };
  const [users, groups] = await Promise.all([
    client.listUsers({ PageNumber: 1, PageSize: 1 }, opts),
    client.listGroups({ PageNumber: 1, PageSize: 1 }, opts),
  ]);
  return { users: users.Total, groups: groups.Total };
}

/** The PEM pair, checked by building a secure context (a mismatched key throws here, not per connection). */
function readTls(files: { certFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  const pair = { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) };
  createSecureContext(pair);
  return pair;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Awaits one close step for at most `timeoutMs`; a failure or a hang is logged and reported as false. */
async function step(
  logger: Logger,
  what: string,
  promise: Promise<unknown>,
  timeoutMs = CLOSE_STEP_MS,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    promise.then(
      () => 'ok' as const,
      (err: unknown) => {
        logger.warn({ err }, `closing the ${what} failed`);
        return 'failed' as const;
      },
    ),
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (outcome === 'timeout') logger.warn({ timeoutMs }, `closing the ${what} timed out`);
  return outcome === 'ok';
}

/**
 * What Node answers before the app sees a request (headers over 16 KiB, malformed HTTP, a header
 * timeout) gets a SCIM error body too, like every other answer of the bridge.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status =
    err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const detail =
    status === 431
      ? 'request headers are larger than 16 KiB'
      : status === 408
        ? 'the request was not received in time'
        : 'malformed HTTP request';
  const body = JSON.stringify({ schemas: [ERROR_SCHEMA], status: String(status), detail });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/scim+json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
