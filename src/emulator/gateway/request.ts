import type { IncomingMessage } from 'node:http';
import type { Params } from '../actions/params.js';
import { businessErrors, gatewayErrors } from '../errors.js';

export const MAX_BODY_BYTES = 1024 * 1024;

// Past this much discarded upload the socket is simply destroyed.
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;

/**
 * Reads the whole body (needed for the payload hash). Over the limit the rest is read and discarded
 * before rejecting with 413, so the client reliably sees the answer instead of a reset mid-upload.
 */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_DRAIN_BYTES) {
        req.destroy();
        return;
      }
      if (tooLarge) return;
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) reject(gatewayErrors.requestTooLarge(limit));
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new Error('request aborted'));
    });
  });
}

/**
 * Parameters from the query string merged with the JSON body; when both carry a key the BODY wins
 * (unverified upstream). Action and Version come only from the query and are not parameters.
 * A repeated query key keeps its last value.
 */
export function mergeParams(query: URLSearchParams, body: Buffer, contentType: string | undefined): Params {
  // Null prototype: a body key such as "__proto__" must stay an ordinary (ignored) parameter.
  const params: Params = Object.create(null);
  for (const [k, v] of query) {
    if (k !== 'Action' && k !== 'Version') params[k] = v;
  }
  const parsed = parseJsonBody(body, contentType);
  for (const [k, v] of Object.entries(parsed)) {
    if (k !== 'Action' && k !== 'Version') params[k] = v;
  }
  return params;
}

/**
 * An empty (or all-whitespace) body is `{}` whatever the content type, so GETs signed with the Go
 * SDK's default form content type work. A non-empty body must be a JSON object sent as
 * application/json (any charset parameter) or without a content type; anything else is InvalidParam.
 */
function parseJsonBody(body: Buffer, contentType: string | undefined): Record<string, unknown> {
  if (body.length === 0) return {};
  const text = body.toString('utf8');
  if (text.trim() === '') return {};
  if (contentType !== undefined && contentType !== '') {
    const mediaType = contentType.split(';', 1)[0]!.trim().toLowerCase();
    if (mediaType !== 'application/json') throw businessErrors.invalidParam('Content-Type', contentType);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw businessErrors.invalidParam('Body', 'malformed JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw businessErrors.invalidParam('Body', 'not a JSON object');
  }
  return value as Record<string, unknown>;
}
