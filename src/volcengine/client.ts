// CloudIdentity OpenAPI client: signed POST+JSON calls over one keep-alive undici pool, with a
// per-attempt timeout, a total deadline, full-jitter retries and recovery of ambiguous mutations.
import type { Logger } from 'pino';
import { Pool } from 'undici';
import type { ActionName, CallPlan } from './actions.js';
import * as actions from './actions.js';
import { isRecord, parseResponse, safeSnippet } from './envelope.js';
import {
  CREDENTIAL_HINT,
  ErrorCode,
  isCredentialProblem,
  VolcengineApiError,
  type VolcengineError,
  VolcengineTransportError,
} from './errors.js';
import { normalizeHost, signRequest } from './signer.js';
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

export const API_VERSION = '2023-01-01';
export const SERVICE_NAME = 'cloudidentity';
export const DEFAULT_ENDPOINT = 'https://open.volcengineapi.com';
export const DEFAULT_REGION = 'cn-beijing';

const CONTENT_TYPE = 'application/json; charset=utf-8';
/** Larger answers are not CloudIdentity envelopes (a 100-user page is well under 100 KiB). */
const MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Errors of a mutation answered after an earlier attempt of the same call may have committed. */
const uncertain = new WeakSet<object>();

/**
 * Whether `e` answered a mutation after an earlier attempt of the same call may have committed (its
 * answer lost): e.g. UserNameAlreadyExists or GroupNameAlreadyExists that the lost attempt itself may
 * have caused. Whether the existing account or group is that attempt's is the caller's to decide: a
 * namesake may be someone else's.
 */
export function followedUncertainAttempt(e: unknown): boolean {
  return typeof e === 'object' && e !== null && uncertain.has(e);
}

/** Hooks for metrics; exceptions thrown by an observer are swallowed. */
export interface ClientObserver {
  /** `outcome` is 'ok', the upstream Error.Code, or the transport failure kind. */
  onAttempt?(e: {
    action: string;
    outcome: string;
    durationMs: number;
    httpStatus?: number;
    requestId?: string;
  }): void;
  onRetry?(e: { action: string; reason: string; delayMs: number }): void;
  onDeadline?(e: { action: string }): void;
}

/**
 * A ceiling on the calls sent to CloudIdentity (VOLCENGINE_MAX_RPS), consulted before every attempt.
 * The client only waits on it and reports throttling; the counting is the pacer's.
 */
export interface CallPacer {
  /** Resolves true when an attempt may be sent now, false when `deadlineAt` would pass first. */
  acquire(deadlineAt: number, signal?: AbortSignal): Promise<boolean>;
  /** CloudIdentity answered FlowLimitExceeded (HTTP 429). */
  throttled(): void;
}

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

type Env = Readonly<Record<string, string | undefined>>;

/** Reads VOLCENGINE_ACCESS_KEY, VOLCENGINE_SECRET_KEY, VOLCENGINE_SESSION_TOKEN, VOLCENGINE_REGION, VOLCENGINE_ENDPOINT. */
export function clientOptionsFromEnv(env: Env = process.env): CloudIdentityClientOptions {
  const accessKeyId = env.VOLCENGINE_ACCESS_KEY?.trim();
  const secretAccessKey = env.VOLCENGINE_SECRET_KEY?.trim();
  if (!accessKeyId || !secretAccessKey) {
    throw new Error('VOLCENGINE_ACCESS_KEY and VOLCENGINE_SECRET_KEY must both be set');
  }
  const sessionToken = env.VOLCENGINE_SESSION_TOKEN?.trim();
  return {
    accessKeyId,
    secretAccessKey,
    ...(sessionToken ? { sessionToken } : {}),
    region: env.VOLCENGINE_REGION?.trim() || DEFAULT_REGION,
    endpoint: env.VOLCENGINE_ENDPOINT?.trim() || DEFAULT_ENDPOINT,
  };
}

// ---------------------------------------------------------------------------------------------
// Retry policy

const RETRYABLE_5XX = new Set([500, 502, 503, 504]);
const RETRYABLE_5XX_CODES = new Set<string>([
  ErrorCode.InternalError,
  ErrorCode.InternalServiceError,
  ErrorCode.ServiceUnavailableTemp,
  ErrorCode.InternalServiceTimeout,
]);
/** Socket-level failures that prove the request never reached the server. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

interface Verdict {
  retry: boolean;
  /** The failed attempt may have been applied upstream. */
  ambiguous: boolean;
  /** Minimum delay before the next attempt (Retry-After). */
  minDelayMs?: number;
}

function apiVerdict(e: VolcengineApiError): Verdict {
  const minDelayMs = e.retryAfterSeconds !== undefined ? e.retryAfterSeconds * 1000 : undefined;
  // A count quota does not clear by waiting, unlike throttling (the SDKs wrongly retry every 429).
  if (e.code === ErrorCode.ReachedQuotaLimit) return { retry: false, ambiguous: false };
  // Rejected before any change: safe to repeat.
  if (e.code === ErrorCode.FlowLimitExceeded || e.httpStatus === 429)
    return { retry: true, ambiguous: false, minDelayMs };
  if (e.code === ErrorCode.ConcurrentException) return { retry: true, ambiguous: false, minDelayMs };
  if (RETRYABLE_5XX.has(e.httpStatus) || RETRYABLE_5XX_CODES.has(e.code)) {
    return { retry: true, ambiguous: true, minDelayMs };
  }
  return { retry: false, ambiguous: false };
}

function errorCode(e: unknown): string | undefined {
  if (isRecord(e) && typeof e.code === 'string') return e.code;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(private readonly max: number) {}

  /** Resolves true when a permit is held, false if `waitMs` passed first. Rejects if `signal` aborts. */
  acquire(waitMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.active < this.max) {
      this.active++;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve, reject) => {
      const grant = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      };
      const leave = (): void => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
      };
      const timer = setTimeout(() => {
        leave();
        signal?.removeEventListener('abort', onAbort);
        resolve(false);
      }, waitMs);
      const onAbort = (): void => {
        leave();
        clearTimeout(timer);
        reject(abortReason(signal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(grant);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    // Hand the permit straight to the next waiter so `active` never drops below the queue's needs.
    if (next) next();
    else this.active--;
  }
}

function abortReason(signal: AbortSignal | undefined): Error {
  const r: unknown = signal?.reason;
  if (r instanceof Error) return r;
  const e = new Error(typeof r === 'string' ? r : 'The operation was aborted');
  e.name = 'AbortError';
  return e;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function positive(name: string, v: number, allowZero = false): number {
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new Error(
      `CloudIdentityClient: ${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`,
    );
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Client

type AttemptOutcome =
  | { ok: true; result: Record<string, unknown> }
  | ({ ok: false; error: VolcengineError } & Verdict);

export class CloudIdentityClient implements CloudIdentityApi {
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly host: string;
  private readonly accessKeyId: string;
  private readonly secretAccessKey: string;
  private readonly sessionToken: string | undefined;
  private readonly region: string;
  private readonly attemptTimeoutMs: number;
  private readonly deadlineMs: number;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly mutationSlots: Semaphore | undefined;
  private readonly pacer: CallPacer | undefined;
  private readonly logger: Logger | undefined;
  private readonly observer: ClientObserver | undefined;
  private readonly now: () => Date;
  private readonly random: () => number;
  private closed = false;

  static fromEnv(
    env: Env = process.env,
    extra: Partial<CloudIdentityClientOptions> = {},
  ): CloudIdentityClient {
    return new CloudIdentityClient({ ...clientOptionsFromEnv(env), ...extra });
  }

  constructor(opts: CloudIdentityClientOptions) {
    if (!opts.accessKeyId || !opts.secretAccessKey) {
      throw new Error('CloudIdentityClient: accessKeyId and secretAccessKey are required');
    }
    const url = new URL(opts.endpoint ?? DEFAULT_ENDPOINT);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new Error(`CloudIdentityClient: endpoint must be http(s), got ${url.protocol}`);
    }
    this.basePath = url.pathname || '/';
    this.host = normalizeHost(url.host);
    this.accessKeyId = opts.accessKeyId;
    this.secretAccessKey = opts.secretAccessKey;
    this.sessionToken = opts.sessionToken || undefined;
    this.region = opts.region ?? DEFAULT_REGION;
    this.attemptTimeoutMs = positive('attemptTimeoutMs', opts.attemptTimeoutMs ?? 10_000);
    this.deadlineMs = positive('deadlineMs', opts.deadlineMs ?? 25_000);
    this.maxAttempts = Math.max(1, Math.floor(positive('maxAttempts', opts.maxAttempts ?? 4)));
    this.baseDelayMs = positive('baseDelayMs', opts.baseDelayMs ?? 100, true);
    this.maxDelayMs = positive('maxDelayMs', opts.maxDelayMs ?? 5_000, true);
    const mc = Math.floor(positive('mutationConcurrency', opts.mutationConcurrency ?? 0, true));
    this.mutationSlots = mc > 0 ? new Semaphore(mc) : undefined;
    this.pacer = opts.pacer;
    this.logger = opts.logger?.child({ component: 'volcengine' });
    this.observer = opts.observer;
    this.now = opts.now ?? (() => new Date());
    this.random = opts.random ?? Math.random;
    // One keep-alive pool for the endpoint's origin; the path and query are per request.
    this.pool = new Pool(url.origin, {
      connections: Math.floor(positive('connections', opts.connections ?? 32)),
      pipelining: 1,
      connect: { timeout: this.attemptTimeoutMs },
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.close();
  }

  // ----- actions -------------------------------------------------------------------------------

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

  // ----- call loop -----------------------------------------------------------------------------

  private async call<T>(plan: CallPlan<T>, opts: CallOptions | undefined): Promise<T> {
    if (this.closed) throw new Error('CloudIdentityClient is closed');
    const { action } = plan;
    const signal = opts?.signal;
    const deadlineAt = Math.min(Date.now() + this.deadlineMs, opts?.deadlineAt ?? Number.POSITIVE_INFINITY);
    // Compact JSON; undefined fields disappear, numbers and booleans stay JSON types.
    const body = Buffer.from(JSON.stringify(plan.params), 'utf8');
    const isMutation = actions.isMutation(action);

    let mayHaveCommitted = false;
    let resigned = false;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abortReason(signal);
      if (Date.now() >= deadlineAt)
        throw this.deadline(action, 'deadline passed before the attempt could start');

      const outcome = await this.attempt(action, body, isMutation, deadlineAt, attempt, signal);
      if (outcome.ok) return plan.parse(outcome.result);

      const { error } = outcome;
      if (error instanceof VolcengineApiError && error.code === ErrorCode.FlowLimitExceeded) {
        this.notify(() => this.pacer?.throttled());
      }
      if (isMutation && mayHaveCommitted && error instanceof VolcengineApiError) {
        if (error.code === plan.doneIf) {
          this.logger?.info(
            { action, code: error.code, requestId: error.requestId },
            'cloudidentity: treated as done by an earlier attempt that may have committed',
          );
          return plan.parse({});
        }
        uncertain.add(error);
      }
      if (outcome.ambiguous) mayHaveCommitted = true;

      let delayMs: number;
      if (error instanceof VolcengineApiError && error.code === ErrorCode.InvalidTimestamp) {
        // Our request may just have waited too long somewhere: sign once more with a fresh X-Date.
        if (resigned) throw error;
        resigned = true;
        delayMs = 0;
      } else if (outcome.retry) {
        const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
        delayMs = Math.max(this.random() * cap, outcome.minDelayMs ?? 0);
      } else {
        throw error;
      }
      if (attempt >= this.maxAttempts) throw error;
      if (Date.now() + delayMs >= deadlineAt) {
        // Sleeping would end past the deadline: give up now with the real reason (it may carry Retry-After).
        this.notify(() => this.observer?.onDeadline?.({ action }));
        throw error;
      }
      const reason = error instanceof VolcengineApiError ? error.code : error.kind;
      this.notify(() => this.observer?.onRetry?.({ action, reason, delayMs }));
      this.logger?.debug({ action, attempt, reason, delayMs: Math.round(delayMs) }, 'cloudidentity retry');
      if (delayMs > 0) await sleep(delayMs, signal);
    }
  }

  /** One signed HTTP exchange. Never throws a VolcengineError (it is returned); throws on caller abort. */
  private async attempt(
    action: ActionName,
    body: Buffer,
    isMutation: boolean,
    deadlineAt: number,
    attempt: number,
    signal: AbortSignal | undefined,
  ): Promise<AttemptOutcome> {
    if (this.pacer && !(await this.pacer.acquire(deadlineAt, signal))) {
      const error = this.deadline(
        action,
        'deadline passed waiting under the rate ceiling (VOLCENGINE_MAX_RPS)',
      );
      return this.finish(action, attempt, 0, { ok: false, retry: false, ambiguous: false, error });
    }
    if (isMutation && this.mutationSlots) {
      const got = await this.mutationSlots.acquire(Math.max(0, deadlineAt - Date.now()), signal);
      if (!got) {
        const error = this.deadline(action, 'deadline passed waiting for a mutation slot');
        return this.finish(action, attempt, 0, { ok: false, retry: false, ambiguous: false, error });
      }
      try {
        return await this.exchange(action, body, deadlineAt, attempt, signal);
      } finally {
        this.mutationSlots.release();
      }
    }
    return this.exchange(action, body, deadlineAt, attempt, signal);
  }

  private async exchange(
    action: ActionName,
    body: Buffer,
    deadlineAt: number,
    attempt: number,
    signal: AbortSignal | undefined,
  ): Promise<AttemptOutcome> {
    const started = Date.now();
    const remaining = deadlineAt - started;
    if (remaining <= 0) {
      const error = this.deadline(action, 'deadline passed before the attempt could start');
      return this.finish(action, attempt, 0, { ok: false, retry: false, ambiguous: false, error });
    }
    const limitedByDeadline = remaining < this.attemptTimeoutMs;
    const timeoutMs = limitedByDeadline ? remaining : this.attemptTimeoutMs;

    const query = { Action: action, Version: API_VERSION };
    const headers: Record<string, string> = { Host: this.host, 'Content-Type': CONTENT_TYPE };
    const signed = signRequest({
      method: 'POST',
      path: this.basePath,
      query,
      headers,
      body,
      accessKeyId: this.accessKeyId,
      secretAccessKey: this.secretAccessKey,
      sessionToken: this.sessionToken,
      region: this.region,
      service: SERVICE_NAME,
      date: this.now(),
    });

    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, timeoutMs);
    const onCallerAbort = (): void => ac.abort();
    signal?.addEventListener('abort', onCallerAbort, { once: true });

    let status: number | undefined;
    let responseHeaders: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      const res = await this.pool.request({
        method: 'POST',
        // The query exactly as signed (the signer already built its canonical form).
        path: `${this.basePath}?${signed.canonicalQueryString}`,
        headers: { ...headers, ...signed.headers },
        body,
        signal: ac.signal,
        // Our own timer bounds the attempt; keep undici's from firing with a different meaning.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      status = res.statusCode;
      responseHeaders = res.headers;
      for await (const chunk of res.body) {
        const buf = chunk as Buffer;
        size += buf.length;
        if (size > MAX_BODY_BYTES) {
          res.body.destroy();
          return this.finish(action, attempt, started, {
            ok: false,
            retry: status >= 500,
            ambiguous: true,
            error: new VolcengineTransportError(
              action,
              'malformed',
              `HTTP ${status}, body over ${MAX_BODY_BYTES} bytes`,
              status,
            ),
          });
        }
        chunks.push(buf);
      }
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      return this.finish(
        action,
        attempt,
        started,
        this.transportFailure(action, err, timedOut, limitedByDeadline, timeoutMs, status, chunks),
      );
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onCallerAbort);
    }

    const parsed = parseResponse(action, status, responseHeaders, Buffer.concat(chunks).toString('utf8'));
    let outcome: AttemptOutcome;
    if (parsed.ok) outcome = { ok: true, result: parsed.result };
    else if (parsed.error instanceof VolcengineApiError) {
      outcome = { ok: false, error: parsed.error, ...apiVerdict(parsed.error) };
    } else {
      // Malformed: a 5xx page from a proxy is transient; a malformed 2xx/4xx would just repeat.
      outcome = { ok: false, error: parsed.error, retry: status >= 500, ambiguous: true };
    }
    return this.finish(action, attempt, started, outcome, status, parsed.ok ? parsed.requestId : undefined);
  }

  private transportFailure(
    action: ActionName,
    err: unknown,
    timedOut: boolean,
    limitedByDeadline: boolean,
    timeoutMs: number,
    status: number | undefined,
    partial: Buffer[],
  ): AttemptOutcome {
    if (timedOut) {
      const kind = limitedByDeadline ? 'deadline' : 'timeout';
      if (kind === 'deadline') this.notify(() => this.observer?.onDeadline?.({ action }));
      return {
        ok: false,
        retry: kind === 'timeout',
        ambiguous: true,
        error: new VolcengineTransportError(
          action,
          kind,
          `no complete answer within ${Math.round(timeoutMs)} ms`,
          status,
          undefined,
          { cause: err },
        ),
      };
    }
    const code = errorCode(err) ?? '';
    const detail = err instanceof Error ? `${code ? `${code}: ` : ''}${err.message}` : String(err);
    if (status !== undefined) {
      // Headers arrived but the body was cut off: a truncated answer, and the call may have committed.
      const snippet = safeSnippet(Buffer.concat(partial).toString('utf8'));
      return {
        ok: false,
        retry: true,
        ambiguous: true,
        error: new VolcengineTransportError(
          action,
          'malformed',
          `HTTP ${status}, body truncated (${detail})${snippet ? `: ${snippet}` : ''}`,
          status,
          undefined,
          { cause: err },
        ),
      };
    }
    if (code === 'UND_ERR_CLOSED' || code === 'UND_ERR_DESTROYED' || code === 'UND_ERR_INVALID_ARG') {
      // Our side refused to send (pool closed, or e.g. a session token that is no valid header value).
      return {
        ok: false,
        retry: false,
        ambiguous: false,
        error: new VolcengineTransportError(action, 'network', detail, undefined, undefined, { cause: err }),
      };
    }
    return {
      ok: false,
      retry: true,
      ambiguous: !NOT_SENT_CODES.has(code),
      error: new VolcengineTransportError(action, 'network', detail, undefined, undefined, { cause: err }),
    };
  }

  /** Logs and reports one attempt, then hands its outcome back. */
  private finish(
    action: ActionName,
    attempt: number,
    started: number,
    outcome: AttemptOutcome,
    httpStatus?: number,
    okRequestId?: string,
  ): AttemptOutcome {
    const durationMs = started ? Date.now() - started : 0;
    let outcomeName = 'ok';
    let requestId = okRequestId;
    let status = httpStatus;
    if (!outcome.ok) {
      const e = outcome.error;
      outcomeName = e instanceof VolcengineApiError ? e.code : e.kind;
      requestId = e.requestId;
      status = e.httpStatus ?? status;
    }
    this.notify(() =>
      this.observer?.onAttempt?.({ action, outcome: outcomeName, durationMs, httpStatus: status, requestId }),
    );
    // Only metadata is logged: never the body, the signature or the credentials.
    this.logger?.debug(
      { action, attempt, status, code: outcomeName, requestId, durationMs },
      'cloudidentity attempt',
    );
    if (!outcome.ok && isCredentialProblem(outcome.error)) {
      this.logger?.error({ action, code: outcomeName, requestId }, CREDENTIAL_HINT);
    }
    return outcome;
  }

  /** Reports the deadline to the observer and builds the error for it. */
  private deadline(action: ActionName, why: string): VolcengineTransportError {
    this.notify(() => this.observer?.onDeadline?.({ action }));
    return new VolcengineTransportError(action, 'deadline', why);
  }

  private notify(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger?.warn({ err }, 'cloudidentity observer failed');
    }
  }
}
