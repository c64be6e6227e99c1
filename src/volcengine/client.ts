// CloudIdentity OpenAPI client: signed POST+JSON calls over one keep-alive undici pool, with a
// per-attempt timeout, a total deadline, full-jitter retries and recovery of ambiguous mutations.
import type { Logger } from 'pino';
import { Pool } from 'undici';
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

export type ActionName =
  | 'CreateUser'
  | 'GetUser'
  | 'ListUsers'
  | 'UpdateUser'
  | 'DeleteUser'
  | 'CreateGroup'
  | 'GetGroup'
  | 'ListGroups'
  | 'UpdateGroup'
  | 'DeleteGroup'
  | 'AddUserToGroup'
  | 'RemoveUserFromGroup'
  | 'ListGroupMembers';

const MUTATIONS: ReadonlySet<ActionName> = new Set<ActionName>([
  'CreateUser',
  'UpdateUser',
  'DeleteUser',
  'CreateGroup',
  'UpdateGroup',
  'DeleteGroup',
  'AddUserToGroup',
  'RemoveUserFromGroup',
]);

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
// Response envelope

export type ParsedResponse =
  | { ok: true; result: Record<string, unknown>; requestId?: string }
  | { ok: false; error: VolcengineError };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** First characters of an unexpected body, single-line, for error messages and logs. */
export function safeSnippet(text: string, max = 120): string {
  const flat = text
    .replace(/\p{Cc}+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** Seconds from a Retry-After header (delta-seconds or HTTP-date). */
export function parseRetryAfter(
  value: string | string[] | undefined,
  nowMs = Date.now(),
): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

/**
 * Turns one HTTP answer into a Result or a typed error. `ResponseMetadata.Error` is an error
 * whatever the status; the Go SDK's fallback `{HTTPCode, errorcode, message}` is understood too.
 */
export function parseResponse(
  action: string,
  status: number,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  text: string,
): ParsedResponse {
  const retryAfter = parseRetryAfter(headers['retry-after']);
  const headerRequestId = firstHeader(headers['x-tt-logid']) ?? firstHeader(headers['x-request-id']);
  const malformed = (why: string, requestId = headerRequestId): ParsedResponse => ({
    ok: false,
    error: new VolcengineTransportError(
      action,
      'malformed',
      `HTTP ${status}, ${why}${text ? `: ${safeSnippet(text)}` : ''}`,
      status,
      requestId,
    ),
  });

  if (text.trim() === '') return malformed('empty body');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return malformed('body is not JSON');
  }
  if (!isRecord(doc)) return malformed('body is not a JSON object');

  const meta = doc.ResponseMetadata;
  if (isRecord(meta)) {
    const requestId = typeof meta.RequestId === 'string' && meta.RequestId ? meta.RequestId : headerRequestId;
    const err = meta.Error;
    if (isRecord(err)) {
      const code = typeof err.Code === 'string' && err.Code ? err.Code : `HTTP${status}`;
      const message = typeof err.Message === 'string' ? err.Message : '';
      return {
        ok: false,
        error: new VolcengineApiError(action, code, status, requestId, message, retryAfter),
      };
    }
    if (status < 200 || status >= 300)
      return malformed('error status without ResponseMetadata.Error', requestId);
    // Actions without output answer `"Result": {}`; tolerate a missing one and let the action check fields.
    const result = doc.Result ?? {};
    if (!isRecord(result)) return malformed('Result is not an object', requestId);
    return { ok: true, result, requestId };
  }

  if ('errorcode' in doc || 'HTTPCode' in doc) {
    const code = doc.errorcode;
    const codeText = typeof code === 'string' || typeof code === 'number' ? String(code) : '';
    if (codeText && codeText !== '0') {
      const message = typeof doc.message === 'string' ? doc.message : '';
      return {
        ok: false,
        error: new VolcengineApiError(action, codeText, status, headerRequestId, message, retryAfter),
      };
    }
  }
  return malformed('no ResponseMetadata');
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s ? s : undefined;
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

interface CallPlan<T> {
  action: ActionName;
  params: object;
  /** Checks and shapes Result; throws a malformed error (never retried) if a required field is missing. */
  parse(result: Record<string, unknown>): T;
  /**
   * The error code that, after an earlier attempt may have committed, only says that attempt did the
   * work ("not found" after a delete, "already a member" after an add): the call then succeeds.
   */
  doneIf?: string;
}

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
    return this.call(
      {
        action: 'CreateUser',
        params: input,
        parse: (r) => this.user('CreateUser', r),
      },
      opts,
    );
  }

  getUser(input: { UserId: string }, opts?: CallOptions): Promise<CloudIdentityUser> {
    return this.call({ action: 'GetUser', params: input, parse: (r) => this.user('GetUser', r) }, opts);
  }

  listUsers(input: ListUsersInput, opts?: CallOptions): Promise<ListUsersResult> {
    return this.call(
      {
        action: 'ListUsers',
        params: input,
        parse: (r) => ({
          ...this.page(r, input, 'Users'),
          Users: this.list('ListUsers', r, 'Users', (u, where) => this.user('ListUsers', u, where)),
        }),
      },
      opts,
    );
  }

  updateUser(input: UpdateUserInput, opts?: CallOptions): Promise<void> {
    // Idempotent by nature: repeating an update that already landed changes nothing.
    return this.call({ action: 'UpdateUser', params: input, parse: () => undefined }, opts);
  }

  deleteUser(input: { UserId: string }, opts?: CallOptions): Promise<void> {
    return this.call(
      {
        action: 'DeleteUser',
        params: input,
        parse: () => undefined,
        doneIf: ErrorCode.UserNotFound,
      },
      opts,
    );
  }

  createGroup(input: CreateGroupInput, opts?: CallOptions): Promise<CloudIdentityGroup> {
    return this.call(
      {
        action: 'CreateGroup',
        params: input,
        parse: (r) => this.group('CreateGroup', r),
      },
      opts,
    );
  }

  getGroup(input: { GroupId: string }, opts?: CallOptions): Promise<CloudIdentityGroup> {
    return this.call({ action: 'GetGroup', params: input, parse: (r) => this.group('GetGroup', r) }, opts);
  }

  listGroups(input: ListGroupsInput, opts?: CallOptions): Promise<ListGroupsResult> {
    return this.call(
      {
        action: 'ListGroups',
        params: input,
        parse: (r) => ({
          ...this.page(r, input, 'Groups'),
          Groups: this.list('ListGroups', r, 'Groups', (g, where) => this.group('ListGroups', g, where)),
        }),
      },
      opts,
    );
  }

  updateGroup(input: UpdateGroupInput, opts?: CallOptions): Promise<void> {
    return this.call({ action: 'UpdateGroup', params: input, parse: () => undefined }, opts);
  }

  deleteGroup(input: { GroupId: string }, opts?: CallOptions): Promise<void> {
    return this.call(
      {
        action: 'DeleteGroup',
        params: input,
        parse: () => undefined,
        doneIf: ErrorCode.UserGroupNotFound,
      },
      opts,
    );
  }

  addUserToGroup(input: MembershipInput, opts?: CallOptions): Promise<void> {
    return this.call(
      {
        action: 'AddUserToGroup',
        params: input,
        parse: () => undefined,
        doneIf: ErrorCode.UserAlreadyInGroup,
      },
      opts,
    );
  }

  removeUserFromGroup(input: MembershipInput, opts?: CallOptions): Promise<void> {
    return this.call(
      {
        action: 'RemoveUserFromGroup',
        params: input,
        parse: () => undefined,
        doneIf: ErrorCode.UserNotInGroup,
      },
      opts,
    );
  }

  listGroupMembers(input: ListGroupMembersInput, opts?: CallOptions): Promise<ListGroupMembersResult> {
    return this.call(
      {
        action: 'ListGroupMembers',
        params: input,
        parse: (r) => ({
          ...this.page(r, input, 'Members'),
          Members: this.list('ListGroupMembers', r, 'Members', (m, where) => {
            const member = textFields('ListGroupMembers', m, MEMBER_TEXT, where);
            if (typeof member.UserId !== 'string' || !member.UserId)
              throw resultError('ListGroupMembers', `${where}.UserId is missing`);
            return member as unknown as ListGroupMembersResult['Members'][number];
          }),
        }),
      },
      opts,
    );
  }

  // ----- result shaping ------------------------------------------------------------------------

  private user(action: ActionName, r: Record<string, unknown>, where = 'Result'): CloudIdentityUser {
    const u = textFields(action, r, USER_TEXT, where);
    if (typeof u.UserId !== 'string' || !u.UserId) throw resultError(action, `${where}.UserId is missing`);
    return u as unknown as CloudIdentityUser;
  }

  private group(action: ActionName, r: Record<string, unknown>, where = 'Result'): CloudIdentityGroup {
    const g = textFields(action, r, GROUP_TEXT, where);
    if (typeof g.GroupId !== 'string' || !g.GroupId) throw resultError(action, `${where}.GroupId is missing`);
    return g as unknown as CloudIdentityGroup;
  }

  private list<T>(
    action: ActionName,
    r: Record<string, unknown>,
    key: string,
    shape: (item: Record<string, unknown>, where: string) => T,
  ): T[] {
    const items = r[key];
    // An empty page may come back as null or without the member at all.
    if (items === undefined || items === null) return [];
    if (!Array.isArray(items)) throw resultError(action, `Result.${key} is not an array`);
    return items.map((item, i) => {
      const where = `Result.${key}[${i}]`;
      if (!isRecord(item)) throw resultError(action, `${where} is not an object`);
      return shape(item, where);
    });
  }

  private page(
    r: Record<string, unknown>,
    input: { PageNumber?: number; PageSize?: number },
    key: string,
  ): { PageNumber: number; PageSize: number; Total: number } {
    const num = (v: unknown, fallback: number): number => {
      const n = typeof v === 'string' ? Number(v) : v;
      return typeof n === 'number' && Number.isFinite(n) ? n : fallback;
    };
    const count = Array.isArray(r[key]) ? (r[key] as unknown[]).length : 0;
    return {
      PageNumber: num(r.PageNumber, input.PageNumber ?? 1),
      PageSize: num(r.PageSize, input.PageSize ?? 10),
      Total: num(r.Total, count),
    };
  }

  // ----- call loop -----------------------------------------------------------------------------

  private async call<T>(plan: CallPlan<T>, opts: CallOptions | undefined): Promise<T> {
    if (this.closed) throw new Error('CloudIdentityClient is closed');
    const { action } = plan;
    const signal = opts?.signal;
    const deadlineAt = Math.min(Date.now() + this.deadlineMs, opts?.deadlineAt ?? Number.POSITIVE_INFINITY);
    // Compact JSON; undefined fields disappear, numbers and booleans stay JSON types.
    const body = Buffer.from(JSON.stringify(plan.params), 'utf8');
    const isMutation = MUTATIONS.has(action);

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

// The text fields of what CloudIdentity returns. JSON gives no guarantee of their types: a number
// (a numeric UserName, an id) is read as its text, null as absent; anything else is malformed. The
// rest of the bridge can then rely on the declared types (a userName is always a string in SCIM).
const USER_TEXT = [
  'UserId',
  'UserName',
  'DisplayName',
  'Description',
  'Email',
  'Phone',
  'Source',
  'IdentityType',
  'CreatedTime',
  'UpdatedTime',
] as const;
const GROUP_TEXT = [
  'GroupId',
  'GroupName',
  'DisplayName',
  'Description',
  'JoinType',
  'Source',
  'CreatedTime',
  'UpdatedTime',
] as const;
const MEMBER_TEXT = [
  'UserId',
  'UserName',
  'DisplayName',
  'Description',
  'Email',
  'Phone',
  'Source',
  'IdentityType',
  'JoinTime',
] as const;

function textFields(
  action: string,
  r: Record<string, unknown>,
  keys: readonly string[],
  where: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...r };
  for (const key of keys) {
    const v = r[key];
    if (v === undefined || typeof v === 'string') continue;
    if (v === null) delete out[key];
    else if (typeof v === 'number' || typeof v === 'boolean') out[key] = String(v);
    else throw resultError(action, `${where}.${key} is not text`);
  }
  return out;
}

function resultError(action: string, why: string): VolcengineTransportError {
  return new VolcengineTransportError(action, 'malformed', why, 200);
}
