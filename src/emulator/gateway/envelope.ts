import type { ServerResponse } from 'node:http';
import type { ApiError } from '../errors.js';
import { SERVICE } from './auth.js';

export interface ResponseMeta {
  RequestId: string;
  Action: string;
  Version: string;
  Region: string;
}

function metadata(meta: ResponseMeta) {
  return {
    RequestId: meta.RequestId,
    Action: meta.Action,
    Version: meta.Version,
    Service: SERVICE,
    Region: meta.Region,
  };
}

/** `{ResponseMetadata, Result}`; actions without output pass `{}`. */
export function sendResult(res: ServerResponse, meta: ResponseMeta, result: object): void {
  send(res, 200, JSON.stringify({ ResponseMetadata: metadata(meta), Result: result }));
}

/** Errors carry `ResponseMetadata.Error` and no `Result` member at all (reference §5). */
export function sendError(res: ServerResponse, meta: ResponseMeta, err: ApiError): void {
  const error =
    err.codeN !== undefined
      ? { CodeN: err.codeN, Code: err.code, Message: err.message }
      : { Code: err.code, Message: err.message };
  send(
    res,
    err.status,
    JSON.stringify({ ResponseMetadata: { ...metadata(meta), Error: error } }),
    err.headers,
  );
}

export function send(
  res: ServerResponse,
  status: number,
  body: string,
  headers?: Record<string, string>,
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}
