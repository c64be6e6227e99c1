import { randomUUID } from 'node:crypto';
import type { Express, Request } from 'express';
import type { Logger } from 'pino';
import { redactUrl } from '../logger.js';
import { elapsedMs, type RequestObserver, routeLabel, upstreamRequestIds } from './request-context.js';
import { OPS_PATHS } from './routes.js';

// One access-log line per request: request id, method, URL (personal data masked unless LOG_PII),
// route template, status, latency (responseTime, ms) and the CloudIdentity RequestIds of the calls
// made for the request. Headers are never logged, so Authorization cannot reach the log.
//
// Written by hand rather than with pino-http, which builds a child logger and serialises the
// request for every request, and runs the logger's redaction over a line that, built from the
// fields above only, has nothing to redact: together about a tenth of the bridge's CPU per
// request. Everything else logged while serving a request goes through `req.log`, a child made
// on first use, with the logger's full redaction.

type Level = 'error' | 'warn' | 'info' | 'debug';

const PROBES = new Set<string>(OPS_PATHS);
const SAFE_REQUEST_ID = /^[\w.:-]{1,128}$/;

declare module 'express-serve-static-core' {
  interface Request {
    /** Logger bound to this request ({req: {id, method, url}}), created on first use. */
    log: Logger;
  }
}

/** What the access log keeps per request (in res.locals.accessLog). */
interface AccessState {
  id: string;
  url: string;
  /** {id, method, url} as logged (URL masked unless LOG_PII): built once, on first use. */
  shown?: Record<string, string>;
  child?: Logger;
}

/**
 * The access log, a request observer (ops/request-context.ts): assigns the request id (the client's
 * X-Request-Id when safe, else a UUID), echoes it, and writes the access line when the request
 * ends. Installs `req.log` on `app`'s request prototype (no per-request accessor).
 */
export function accessLog(app: Express, logger: Logger, logPii: boolean): RequestObserver {
  // Same destination and level as `logger`, without redaction (see above).
  const lineLogger = logger.child({}, { redact: [] });
  const requestFields = (req: Request, a: AccessState) => {
    a.shown ??= { id: a.id, method: req.method, url: redactUrl(a.url, logPii) };
    return a.shown;
  };
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request): Logger {
      const a = this.res?.locals.accessLog as AccessState | undefined;
      if (!a) return logger;
      a.child ??= logger.child({ req: requestFields(this, a) });
      return a.child;
    },
  });
  return {
    start(req, res) {
      const incoming = req.headers['x-request-id'];
      const id = typeof incoming === 'string' && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
      res.locals.requestId = id;
      // The request's deadline (REQUEST_DEADLINE_MS) counts from here.
      res.locals.startedAt = Date.now();
      res.setHeader('X-Request-Id', id);
      res.locals.accessLog = { id, url: req.originalUrl ?? req.url ?? '' } satisfies AccessState;
    },
    end(req, res, state) {
      const a = res.locals.accessLog as AccessState;
      const completed = res.writableEnded && !req.readableAborted;
      // A request whose audit record could not be written is always logged at error level.
      const auditFailure = res.locals.auditFailure as { err: unknown; audit: unknown } | undefined;
      const level = auditFailure ? 'error' : levelOf(res.statusCode, a.url, completed);
      if (!lineLogger.isLevelEnabled(level)) return;
      const ids = upstreamRequestIds(res);
      const line: Record<string, unknown> = {
        req: requestFields(req, a),
        res: { statusCode: res.statusCode },
        responseTime: Math.round(elapsedMs(state)),
        route: routeLabel(req, res),
      };
      if (ids.length > 0) line.upstreamRequestIds = ids;
      const message =
        res.statusCode >= 500 ? 'request errored' : completed ? 'request completed' : 'request aborted';
      // A failure the error handler recorded (an Error, possibly carrying upstream text) goes
      // through the redacting logger; the plain line has nothing to redact.
      const failure = res.locals.failure as Record<string, unknown> | undefined;
      if (auditFailure) {
        logger.error(
          { ...line, ...failure, auditError: auditFailure.err, audit: auditFailure.audit },
          `${message}; could not write the audit record of this request`,
        );
        return;
      }
      if (failure) {
        logger[level]({ ...line, ...failure }, message);
        return;
      }
      if (res.statusCode >= 500) line.err = { message: `failed with status code ${res.statusCode}` };
      lineLogger[level](line, message);
    },
  };
}

function levelOf(status: number, url: string, completed: boolean): Level {
  if (status >= 500) return 'error';
  if (status >= 400) return 'warn';
  // Probes and scrapes arrive every few seconds: keep them out of the info stream when they succeed.
  if (completed && PROBES.has(pathOf(url))) return 'debug';
  return 'info';
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
