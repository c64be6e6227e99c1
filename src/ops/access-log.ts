import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { errorSerializer, redactUrl } from '../logger.js';
import { routeLabel, upstreamRequestIds } from './request-context.js';
import { OPS_PATHS } from './routes.js';

// pino-http options for the one access-log line per request: request id, method, URL (personal
// data masked unless LOG_PII), route template, status, latency (responseTime, ms) and the
// CloudIdentity RequestIds of the calls made for the request. Headers are not logged at all, so
// Authorization never reaches the log; the logger's redaction paths are a second line of defence.

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

const PROBES = new Set<string>(OPS_PATHS);

export function accessLogOptions(logPii: boolean) {
  const extra = (req: IncomingMessage, res: ServerResponse, val: Record<string, unknown>) => {
    const ids = upstreamRequestIds(res as Response);
    return {
      ...val,
      route: routeLabel(req as Request, res as Response),
      ...(ids.length ? { upstreamRequestIds: ids } : {}),
    };
  };
  return {
    customLogLevel: (req: IncomingMessage, res: ServerResponse, err?: Error): Level => {
      if (err || res.statusCode >= 500) return 'error';
      // Probes and scrapes arrive every few seconds: keep them out of the info stream when they succeed.
      if (res.statusCode < 400 && PROBES.has(pathOf(req))) return 'debug';
      return res.statusCode >= 400 ? 'warn' : 'info';
    },
    customSuccessObject: extra,
    customErrorObject: (
      req: IncomingMessage,
      res: ServerResponse,
      _err: Error,
      val: Record<string, unknown>,
    ) => extra(req, res, val),
    serializers: {
      req: (req: { id: string; method: string; url: string }) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url, logPii),
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      err: errorSerializer(logPii),
    },
  };
}

function pathOf(req: IncomingMessage): string {
  const url = (req as Request).originalUrl ?? req.url ?? '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
