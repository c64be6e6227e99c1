// One attempt of a CloudIdentity call: the request signed (with a fresh X-Date), sent over the
// keep-alive pool, its answer read within the attempt's time and turned into a Result or an error
// together with what the retry decision needs to know about the failure.
import type { Pool } from 'undici';
import { abortReason } from './abort.js';
import type { ActionName } from './actions.js';
import { isRecord, parseResponse, safeSnippet } from './envelope.js';
import { VolcengineApiError, type VolcengineError, VolcengineTransportError } from './errors.js';
import type { AttemptFailure } from './retry-policy.js';
import { signRequest } from './signer.js';

export const API_VERSION = '2023-01-01';
export const SERVICE_NAME = 'cloudidentity';

const CONTENT_TYPE = 'application/json; charset=utf-8';
/** Larger answers are not CloudIdentity envelopes (a 100-user page is well under 100 KiB). */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** Where and as whom requests are sent. */
export interface Endpoint {
  pool: Pool;
  /** Path of the endpoint URL ('/' for the public one). */
  basePath: string;
  /** Host header, as signed. */
  host: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string | undefined;
  region: string;
  /** Clock for X-Date. */
  now: () => Date;
}

export type Exchanged =
  | { ok: true; result: Record<string, unknown>; requestId?: string; httpStatus: number }
  | { ok: false; error: VolcengineError; failure: AttemptFailure };

/** The error and failure of an attempt that was never sent because the call's deadline came first. */
export function notSent(action: ActionName, why: string): Exchanged {
  return {
    ok: false,
    error: new VolcengineTransportError(action, 'deadline', why),
    failure: { type: 'deadline' },
  };
}

/**
 * One signed HTTP exchange, bounded by `attemptTimeoutMs` and by `deadlineAt`. Never throws a
 * VolcengineError (it is returned); throws the abort reason when the caller aborts.
 */
export async function exchange(
  endpoint: Endpoint,
  action: ActionName,
  body: Buffer,
  limits: { attemptTimeoutMs: number; deadlineAt: number },
  signal: AbortSignal | undefined,
): Promise<Exchanged> {
  const remaining = limits.deadlineAt - Date.now();
  if (remaining <= 0) return notSent(action, 'deadline passed before the attempt could start');
  const limitedByDeadline = remaining < limits.attemptTimeoutMs;
  const timeoutMs = limitedByDeadline ? remaining : limits.attemptTimeoutMs;

  const query = { Action: action, Version: API_VERSION };
  const headers: Record<string, string> = { Host: endpoint.host, 'Content-Type': CONTENT_TYPE };
  const signed = signRequest({
    method: 'POST',
    path: endpoint.basePath,
    query,
    headers,
    body,
    accessKeyId: endpoint.accessKeyId,
    secretAccessKey: endpoint.secretAccessKey,
    sessionToken: endpoint.sessionToken,
    region: endpoint.region,
    service: SERVICE_NAME,
    date: endpoint.now(),
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
    const res = await endpoint.pool.request({
      method: 'POST',
      // The query exactly as signed (the signer already built its canonical form).
      path: `${endpoint.basePath}?${signed.canonicalQueryString}`,
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
        return {
          ok: false,
          error: new VolcengineTransportError(
            action,
            'malformed',
            `HTTP ${status}, body over ${MAX_BODY_BYTES} bytes`,
            status,
          ),
          failure: { type: 'unreadable', httpStatus: status },
        };
      }
      chunks.push(buf);
    }
  } catch (err) {
    if (signal?.aborted) throw abortReason(signal);
    return transportFailure(action, err, { timedOut, limitedByDeadline, timeoutMs, status, partial: chunks });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onCallerAbort);
  }

  const parsed = parseResponse(action, status, responseHeaders, Buffer.concat(chunks).toString('utf8'));
  if (parsed.ok) return { ok: true, result: parsed.result, requestId: parsed.requestId, httpStatus: status };
  const e = parsed.error;
  const failure: AttemptFailure =
    e instanceof VolcengineApiError
      ? { type: 'api', code: e.code, httpStatus: e.httpStatus, retryAfterSeconds: e.retryAfterSeconds }
      : { type: 'unreadable', httpStatus: status };
  return { ok: false, error: e, failure };
}

function transportFailure(
  action: ActionName,
  err: unknown,
  at: {
    timedOut: boolean;
    limitedByDeadline: boolean;
    timeoutMs: number;
    status: number | undefined;
    partial: Buffer[];
  },
): Exchanged {
  if (at.timedOut) {
    const kind = at.limitedByDeadline ? 'deadline' : 'timeout';
    return {
      ok: false,
      error: new VolcengineTransportError(
        action,
        kind,
        `no complete answer within ${Math.round(at.timeoutMs)} ms`,
        at.status,
        undefined,
        { cause: err },
      ),
      failure: { type: kind },
    };
  }
  const code = isRecord(err) && typeof err.code === 'string' ? err.code : '';
  const detail = err instanceof Error ? `${code ? `${code}: ` : ''}${err.message}` : String(err);
  if (at.status !== undefined) {
    // Headers arrived but the body was cut off: a truncated answer, and the call may have committed.
    const snippet = safeSnippet(Buffer.concat(at.partial).toString('utf8'));
    return {
      ok: false,
      error: new VolcengineTransportError(
        action,
        'malformed',
        `HTTP ${at.status}, body truncated (${detail})${snippet ? `: ${snippet}` : ''}`,
        at.status,
        undefined,
        { cause: err },
      ),
      failure: { type: 'cut-off' },
    };
  }
  return {
    ok: false,
    error: new VolcengineTransportError(action, 'network', detail, undefined, undefined, { cause: err }),
    failure: { type: 'socket', code },
  };
}
