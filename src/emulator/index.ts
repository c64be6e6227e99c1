import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { z } from 'zod';
import { describeIssues, FaultInjector } from './faults.js';
import { Authenticator } from './gateway/auth.js';
import { createRequestListener } from './server.js';
import { EmulatorState, nameKey } from './state.js';
import { StateFile } from './state-file.js';
import type { EmulatorOptions, FaultRule, RunningEmulator } from './types.js';

export { StateFileError } from './state-file.js';
export type { EmulatorOptions, FaultRule, RunningEmulator } from './types.js';

/** Documented development credentials accepted when none are configured. Never use them for real. */
export const DEV_ACCESS_KEY = 'AKLTemulatordevaccesskey';
export const DEV_SECRET_KEY = 'emulator-dev-secret-key';

export const DEFAULT_REGION = 'cn-beijing';
export const DEFAULT_MAX_SKEW_SECONDS = 900;
export const DEFAULT_SEED_PREFIX = 'seed-user-';

// Plain-data options are checked up front so a bad value fails at start, not on the first request.
const optionsSchema = z.object({
  port: z.int().min(0).max(65535).optional(),
  host: z.string().min(1).optional(),
  accessKeyId: z.string().min(1).optional(),
  secretAccessKey: z.string().min(1).optional(),
  region: z
    .string()
    .regex(/^[a-z0-9-]+$/, 'must be a region id such as cn-beijing')
    .optional(),
  latencyMs: z.int().min(0).optional(),
  userQuota: z.int().min(0).optional(),
  sensitiveWords: z.array(z.string()).optional(),
  maxSkewSeconds: z.number().min(0).optional(),
  stateFile: z.string().min(1).optional(),
});

/** Starts an emulator on `host:port` (default 127.0.0.1 and an ephemeral port). */
export async function startEmulator(opts: EmulatorOptions = {}): Promise<RunningEmulator> {
  const checked = optionsSchema.safeParse({ ...opts, now: undefined, logger: undefined, faults: undefined });
  if (!checked.success) {
    throw new TypeError(`invalid emulator options: ${describeIssues(checked.error).join('; ')}`);
  }

  const now = opts.now ?? Date.now;
  const logger = opts.logger ?? pino({ level: 'silent' });
  const region = opts.region ?? DEFAULT_REGION;
  const state = new EmulatorState();
  // Opened first: a file that is locked, damaged or foreign stops the start before anything listens.
  const file = opts.stateFile === undefined ? undefined : StateFile.open(opts.stateFile);
  if (file) {
    try {
      const loaded = file.load(state);
      logger.info({ stateFile: file.path, ...loaded }, 'emulator state loaded');
    } catch (err) {
      file.close();
      throw err;
    }
    state.sink = file;
  }
  const instanceId = file?.instanceId ?? randomUUID();
  const faults = new FaultInjector();
  faults.set(opts.faults ?? []);
  const calls = new Map<string, number>();

  // Data is cleared in the state file too; faults and call counts never persist.
  const reset = () => {
    state.clear();
    faults.clear();
    calls.clear();
  };

  const listener = createRequestListener({
    state,
    faults,
    calls,
    reset,
    auth: new Authenticator({
      accessKeyId: opts.accessKeyId ?? DEV_ACCESS_KEY,
      secretAccessKey: opts.secretAccessKey ?? DEV_SECRET_KEY,
      region,
      maxSkewSeconds: opts.maxSkewSeconds ?? DEFAULT_MAX_SKEW_SECONDS,
      now,
    }),
    region,
    latencyMs: opts.latencyMs ?? 0,
    userQuota: opts.userQuota ?? Number.POSITIVE_INFINITY,
    sensitiveWords: (opts.sensitiveWords ?? []).map((w) => w.toLowerCase()).filter((w) => w !== ''),
    now,
    logger,
  });

  const server = createServer(listener);
  const host = opts.host ?? '127.0.0.1';
  try {
    await listen(server, opts.port ?? 0, host);
  } catch (err) {
    file?.close();
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    instanceId,
    setFaults(rules: FaultRule[]) {
      faults.set(rules);
    },
    reset,
    calls: () => Object.fromEntries(calls),
    counts: () => ({
      users: state.users.size,
      groups: state.groups.size,
      memberships: state.membershipCount,
    }),
    seedUsers(n: number, prefix = DEFAULT_SEED_PREFIX) {
      seedUsers(state, n, prefix, now());
    },
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => {
          // After the last request: nothing writes through any more.
          file?.close();
          if (err) reject(err);
          else resolve();
        });
        // Idle keep-alive sockets close with close() itself; a request still in flight (a fault
        // latency) would hold close() open until it answered.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Bulk insert for load tests: `n` new users named prefix + 1, 2, … (taken names are skipped), with a
 * DisplayName and Email. Bypasses validation, sensitive words and the user quota.
 */
function seedUsers(state: EmulatorState, n: number, prefix: string, nowMs: number): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`seedUsers: n must be a non-negative integer, got ${n}`);
  }
  // One transaction for the whole batch when a state file is in use.
  state.batch(() => {
    let created = 0;
    for (let i = 1; created < n; i++) {
      const userName = `${prefix}${i}`;
      if (state.usersByName.has(nameKey(userName))) continue;
      state.createUser(
        { UserName: userName, DisplayName: `Seed User ${i}`, Email: `${userName}@example.com` },
        nowMs,
      );
      created++;
    }
  });
}
