// CloudIdentity OpenAPI client: signed POST+JSON calls over one keep-alive undici pool, with a
// per-attempt timeout, a total deadline and full-jitter retries. The façade over the pieces: the
// actions (actions.ts) run by the call loop (call.ts), one exchange at a time (exchange.ts).
import type { Logger } from 'pino';
import { Pool } from 'undici';
import * as actions from './actions.js';
import { Caller, type CallPacer, type ClientObserver } from './call.js';
import { ConcurrencyLimit } from './concurrency.js';
import { retryPolicy } from './retry-policy.js';
import { normalizeHost } from './signer.js';
import type { CallOptions, CloudIdentityApi } from './types.js';

export { type CallPacer, type ClientObserver, followedUncertainAttempt } from './call.js';
export { API_VERSION, SERVICE_NAME } from './exchange.js';

export const DEFAULT_ENDPOINT = 'https://open.volcengineapi.com';
export const DEFAULT_REGION = 'cn-beijing';

export interface CloudIdentityClientOptions {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Credential-scope region. Default cn-beijing. */
  region?: string;
  /** Default https://open.volcengineapi.com */
  endpoint?: string;
  /** One attempt (connect + headers + body). Default 10 s. */
  attemptTimeoutMs?: number;
  /** Whole call including retries, from the call start; CallOptions.deadlineAt wins when earlier. Default 25 s. */
  deadlineMs?: number;
  /** Attempts per call, first one included. Default 4. */
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Concurrent mutation attempts; 0 = unlimited. Reads are never limited. */
  mutationConcurrency?: number;
  /** Pool connections. Default 32. */
  connections?: number;
  /** Rate ceiling for every attempt; none by default. */
  pacer?: CallPacer;
  logger?: Logger;
  observer?: ClientObserver;
  /** Clock for X-Date only (deadlines use the real clock). For tests. */
  now?: () => Date;
  /** Source of jitter in [0, 1). For tests. */
  random?: () => number;
}

function positive(name: string, v: number, allowZero = false): number {
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new Error(
      `CloudIdentityClient: ${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`,
    );
  }
  return v;
}

export class CloudIdentityClient implements CloudIdentityApi {
  private readonly pool: Pool;
  private readonly caller: Caller;
  private closed = false;

  constructor(opts: CloudIdentityClientOptions) {
    if (!opts.accessKeyId || !opts.secretAccessKey) {
      throw new Error('CloudIdentityClient: accessKeyId and secretAccessKey are required');
    }
    const url = new URL(opts.endpoint ?? DEFAULT_ENDPOINT);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new Error(`CloudIdentityClient: endpoint must be http(s), got ${url.protocol}`);
    }
    const attemptTimeoutMs = positive('attemptTimeoutMs', opts.attemptTimeoutMs ?? 10_000);
    const policy = retryPolicy({
      maxAttempts: Math.max(1, Math.floor(positive('maxAttempts', opts.maxAttempts ?? 4))),
      baseDelayMs: positive('baseDelayMs', opts.baseDelayMs ?? 100, true),
      maxDelayMs: positive('maxDelayMs', opts.maxDelayMs ?? 5_000, true),
    });
    const mc = Math.floor(positive('mutationConcurrency', opts.mutationConcurrency ?? 0, true));
    // One keep-alive pool for the endpoint's origin; the path and query are per request.
    this.pool = new Pool(url.origin, {
      connections: Math.floor(positive('connections', opts.connections ?? 32)),
      pipelining: 1,
      connect: { timeout: attemptTimeoutMs },
    });
    this.caller = new Caller({
      endpoint: {
        pool: this.pool,
        basePath: url.pathname || '/',
        host: normalizeHost(url.host),
        accessKeyId: opts.accessKeyId,
        secretAccessKey: opts.secretAccessKey,
        sessionToken: opts.sessionToken || undefined,
        region: opts.region ?? DEFAULT_REGION,
        now: opts.now ?? (() => new Date()),
      },
      attemptTimeoutMs,
      deadlineMs: positive('deadlineMs', opts.deadlineMs ?? 25_000),
      policy,
      mutationSlots: mc > 0 ? new ConcurrencyLimit(mc) : undefined,
      pacer: opts.pacer,
      logger: opts.logger?.child({ component: 'volcengine' }),
      observer: opts.observer,
      random: opts.random ?? Math.random,
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.close();
  }

  readonly createUser = this.action(actions.createUser);
  readonly getUser = this.action(actions.getUser);
  readonly listUsers = this.action(actions.listUsers);
  readonly updateUser = this.action(actions.updateUser);
  readonly deleteUser = this.action(actions.deleteUser);
  readonly createGroup = this.action(actions.createGroup);
  readonly getGroup = this.action(actions.getGroup);
  readonly listGroups = this.action(actions.listGroups);
  readonly updateGroup = this.action(actions.updateGroup);
  readonly deleteGroup = this.action(actions.deleteGroup);
  readonly addUserToGroup = this.action(actions.addUserToGroup);
  readonly removeUserFromGroup = this.action(actions.removeUserFromGroup);
  readonly listGroupMembers = this.action(actions.listGroupMembers);

  /** The client method of an action: the call, unless the client is closed. */
  private action<I, T>(
    plan: (input: I) => actions.CallPlan<T>,
  ): (input: I, opts?: CallOptions) => Promise<T> {
    return async (input, opts) => {
      if (this.closed) throw new Error('CloudIdentityClient is closed');
      return this.caller.call(plan(input), opts);
    };
  }
}
