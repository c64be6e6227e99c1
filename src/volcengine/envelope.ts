// CloudIdentity's response envelope: one HTTP answer turned into its Result or a typed error.
import { VolcengineApiError, type VolcengineError, VolcengineTransportError } from './errors.js';

export type ParsedResponse =
  | { ok: true; result: Record<string, unknown>; requestId?: string }
  | { ok: false; error: VolcengineError };

export function isRecord(v: unknown): v is Record<string, unknown> {
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
