// Bridges for the resilience suite: an in-process one (emulator + in-memory store + app on a real
// loopback port) and a real child process (`node --import tsx src/main.ts`) that can be SIGKILLed and
// restarted on the same store and port, against an emulator that outlives it.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import {
  DEV_ACCESS_KEY,
  DEV_SECRET_KEY,
  type RunningEmulator,
  startEmulator,
} from '../../src/emulator/index.js';
import { createLogger } from '../../src/logger.js';
import { openStore } from '../../src/store/index.js';
import type { BridgeStore } from '../../src/store/types.js';
import { CloudIdentityClient } from '../../src/volcengine/client.js';

export const SOAK_TOKEN = 'soak-token-0123456789abcdef';

export interface InProcessBridge {
  /** SCIM base URL, e.g. http://127.0.0.1:1234/scim/v2 */
  scimUrl: string;
  emulator: RunningEmulator;
  store: BridgeStore;
  /** every log line the bridge wrote */
  logs: string[];
  close(): Promise<void>;
}

export interface InProcessOptions {
  /** Upstream attempts per CloudIdentity call (the bridge's own retries). Default 2. */
  upstreamMaxAttempts?: number;
  env?: Record<string, string>;
}

/** Emulator + in-memory embedded store + the app, listening on a loopback port (real HTTP, like the harness). */
export async function startInProcessBridge(options: InProcessOptions = {}): Promise<InProcessBridge> {
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const config = loadConfig(
    {
      SCIM_BEARER_TOKENS: SOAK_TOKEN,
      LOG_LEVEL: 'debug',
      REQUEST_DEADLINE_MS: '15000',
      DEACTIVATE_ACTION: 'delete',
      ...options.env,
    },
    () => SOAK_TOKEN,
  );
  const logger = createLogger({ level: 'debug', logPii: config.logPii, destination });
  const emulator = await startEmulator({ port: 0 });
  const store = await openStore({ inMemory: true, logger });
  const client = new CloudIdentityClient({
    accessKeyId: DEV_ACCESS_KEY,
    secretAccessKey: DEV_SECRET_KEY,
    endpoint: emulator.url,
    baseDelayMs: 5,
    maxDelayMs: 50,
    maxAttempts: options.upstreamMaxAttempts ?? 2,
    deadlineMs: config.requestDeadlineMs,
    logger: logger.child({ component: 'cloudidentity' }),
  });
  const app = buildApp({ config, api: client, store, logger });
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    scimUrl: `http://127.0.0.1:${port}/scim/v2`,
    emulator,
    store,
    logs,
    async close() {
      await closeServer(server);
      await client.close();
      await store.close();
      await emulator.close();
    },
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** A free loopback port (bound and released), so that a restarted bridge keeps its URL. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ChildBridgeOptions {
  port: number;
  emulatorUrl: string;
  /** DATA_DIR or DATABASE_URL (and anything else) */
  env: Record<string, string>;
  startTimeoutMs?: number;
}

/** The bridge as a real child process; restartable on the same port and store. */
export class ChildBridge {
  /** every stdout/stderr line of every incarnation */
  readonly lines: string[] = [];
  starts = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;

  constructor(private readonly options: ChildBridgeOptions) {}

  get scimUrl(): string {
    return `http://127.0.0.1:${this.options.port}/scim/v2`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<number> {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: process.cwd(),
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        PORT: String(this.options.port),
        HOST: '127.0.0.1',
        SCIM_BEARER_TOKENS: SOAK_TOKEN,
        VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
        VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
        VOLCENGINE_ENDPOINT: this.options.emulatorUrl,
        DEACTIVATE_ACTION: 'delete',
        LOG_LEVEL: 'debug',
        UPSTREAM_MAX_ATTEMPTS: '2',
        REQUEST_DEADLINE_MS: '15000',
        SHUTDOWN_GRACE_MS: '5000',
        ...this.options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.starts++;
    const incarnation = this.starts;
    this.exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const collect = (stream: NodeJS.ReadableStream, onLine?: (line: string) => void) => {
      let buffer = '';
      stream.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        let nl = buffer.indexOf('\n');
        while (nl >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          nl = buffer.indexOf('\n');
          this.lines.push(line);
          onLine?.(line);
        }
      });
    };
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`bridge #${incarnation} did not listen within ${this.startTimeoutMs} ms`)),
        this.startTimeoutMs,
      );
      collect(child.stdout!, (line) => {
        if (line.includes('"volc-scim-bridge listening"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      collect(child.stderr!);
      void this.exited!.then(() => {
        clearTimeout(timer);
        reject(
          new Error(`bridge #${incarnation} exited before listening:\n${this.lines.slice(-20).join('\n')}`),
        );
      });
    });
    return Date.now() - started;
  }

  private get startTimeoutMs(): number {
    return this.options.startTimeoutMs ?? 90_000;
  }

  /** SIGKILL: no shutdown hooks, in-flight requests cut, the store left as it was. */
  async kill(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM and wait for the exit (graceful shutdown). */
  async stop(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(timer);
  }
}
