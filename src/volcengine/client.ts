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
import type {
  CallOptions,
  CloudIdentityApi,
  CloudIdentityGroup,
  CloudIdentityUser,
  CreateGroupInput,
  CreateUserInput,
  ListGroupMembersInput,
  ListGroupMembersResult,
  ListGroupsInput,
  ListGroupsResult,
  ListUsersInput,
  ListUsersResult,
  MembershipInput,
  UpdateGroupInput,
  UpdateUserInput,
} from './types.js';

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

  createUser(input: CreateUserInput, opts?: CallOptions): Promise<CloudIdentityUser> {
    return this.call(actions.createUser(input), opts);
  }

  getUser(input: { UserId: string }, opts?: CallOptions): Promise<CloudIdentityUser> {
    return this.call(actions.getUser(input), opts);
  }

  listUsers(input: ListUsersInput, opts?: CallOptions): Promise<ListUsersResult> {
    return this.call(actions.listUsers(input), opts);
  }

  updateUser(input: UpdateUserInput, opts?: CallOptions): Promise<void> {
    return this.call(actions.updateUser(input), opts);
  }

  deleteUser(input: { UserId: string }, opts?: CallOptions): Promise<void> {
    return this.call(actions.deleteUser(input), opts);
  }

  createGroup(input: CreateGroupInput, opts?: CallOptions): Promise<CloudIdentityGroup> {
    return this.call(actions.createGroup(input), opts);
  }

  getGroup(input: { GroupId: string }, opts?: CallOptions): Promise<CloudIdentityGroup> {
    return this.call(actions.getGroup(input), opts);
  }

  listGroups(input: ListGroupsInput, opts?: CallOptions): Promise<ListGroupsResult> {
    return this.call(actions.listGroups(input), opts);
  }

  updateGroup(input: UpdateGroupInput, opts?: CallOptions): Promise<void> {
    return this.call(actions.updateGroup(input), opts);
  }

  deleteGroup(input: { GroupId: string }, opts?: CallOptions): Promise<void> {
    return this.call(actions.deleteGroup(input), opts);
  }

  addUserToGroup(input: MembershipInput, opts?: CallOptions): Promise<void> {
    return this.call(actions.addUserToGroup(input), opts);
  }

  removeUserFromGroup(input: MembershipInput, opts?: CallOptions): Promise<void> {
    return this.call(actions.removeUserFromGroup(input), opts);
  }

  listGroupMembers(input: ListGroupMembersInput, opts?: CallOptions): Promise<ListGroupMembersResult> {
    return this.call(actions.listGroupMembers(input), opts);
  }

  private async call<T>(plan: actions.CallPlan<T>, opts: CallOptions | undefined): Promise<T> {
    if (this.closed) throw new Error('CloudIdentityClient is closed');
    return this.caller.call(plan, opts);
  }
}
