import type { Express, NextFunction, Request, Response } from 'express';
import { newCallLog } from '../volcengine/call-log.js';
import type { UpstreamCall, UpstreamCallLog } from '../volcengine/types.js';

// Per-request state and lifecycle: the CloudIdentity calls made for the request (filled by the
// client through each call's CallOptions, which the request's directory context passes), the route
// template the request was served by (for logs and metric labels), and the observers (access log,
// metrics) told when it starts and ends. Nothing here is built per request but the state itself:
// the listeners and accessors are shared functions.

export interface RequestState {
  upstream: UpstreamCallLog;
  /** process.hrtime.bigint() when the request arrived (latency in the log line and metrics). */
  started: bigint;
  /** `/scim/v2/Users/:id`, never the raw path; undefined until a route matched. */
  route?: string;
  /** What Express assigned to `req.route` (read back through the accessor). */
  routeValue?: unknown;
  /** requestContext's option of that name, for routeLabel. */
  unroutedLabel?: RequestContextOptions['unroutedLabel'];
  observers: readonly RequestObserver[];
}

/** Told about every request: when it arrives, and once when it finished or its connection closed first. */
export interface RequestObserver {
  start?(req: Request, res: Response, state: RequestState): void;
  end(req: Request, res: Response, state: RequestState): void;
}

export interface RequestContextOptions {
  /**
   * The label of a request no route matched (refused before routing, e.g. 401), from its path: a
   * bounded stand-in the surface that owns the path builds (scim-http/http.ts for SCIM paths), or
   * undefined for 'unmatched'. Never anything a client chose, such as an id.
   */
  unroutedLabel?: (path: string) => string | undefined;
  /** In order; their ends run in the same order. */
  observers?: readonly RequestObserver[];
}

/**
 * First middleware: opens the request's state and call log, tells the observers, and ends the
 * request for them when its response finishes or its connection closes first. Installs on `app`'s
 * request prototype the `req.route` accessor that records the template of the route serving the
 * request: Express sets `req.route` just before dispatching to a route's handlers, while
 * `req.baseUrl` is still the mount path of the router holding it (after an error, Express has
 * already restored baseUrl, so reading them at the end would lose the mount path).
 */
export function requestContext(app: Express, options: RequestContextOptions = {}) {
  Object.defineProperty(app.request, 'route', {
    configurable: true,
    enumerable: true,
    get(this: Request) {
      return stateOf(this.res)?.routeValue;
    },
    set(this: Request, value: unknown) {
      const state = stateOf(this.res);
      if (!state) {
        Object.defineProperty(this, 'route', { value, writable: true, configurable: true, enumerable: true });
        return;
      }
      state.routeValue = value;
      const path = (value as { path?: unknown } | undefined)?.path;
      if (typeof path === 'string') state.route = joinRoute(this.baseUrl, path);
    },
  });
  const observers = options.observers ?? [];
  const { unroutedLabel } = options;
  return (req: Request, res: Response, next: NextFunction) => {
    const state: RequestState = {
      upstream: newCallLog(),
      started: process.hrtime.bigint(),
      unroutedLabel,
      observers,
    };
    res.locals.requestState = state;
    for (const o of observers) o.start?.(req, res, state);
    res.on('finish', endRequest);
    res.on('close', endRequest);
    next();
  };
}

/** The one 'finish' and 'close' listener of every response (`this` is the response). */
function endRequest(this: Response): void {
  // Whichever comes first ends the request: both listeners go, so the other never calls again.
  this.removeListener('finish', endRequest);
  this.removeListener('close', endRequest);
  const state = stateOf(this);
  if (!state) return;
  for (const o of state.observers) o.end(this.req, this, state);
}

function stateOf(res: Response | undefined): RequestState | undefined {
  return res?.locals?.requestState as RequestState | undefined;
}

function joinRoute(base: string, path: string): string {
  const joined = `${base}${path === '/' ? '' : path}`;
  return joined === '' ? '/' : joined;
}

/** Milliseconds since the request arrived. */
export function elapsedMs(state: RequestState): number {
  return Number(process.hrtime.bigint() - state.started) / 1e6;
}

/**
 * The route label of a finished request: the matched template, else the stand-in of
 * `unroutedLabel` (requests rejected before routing still get a useful label), else 'unmatched'.
 * Never contains ids or anything else a client chose.
 */
export function routeLabel(req: Request, res: Response): string {
  const state = stateOf(res);
  if (state?.route) return state.route;
  const path = (req.originalUrl ?? req.url ?? '').split('?')[0];
  return state?.unroutedLabel?.(path) ?? 'unmatched';
}

/** The call log of a request, which its directory context passes to every CloudIdentity call. */
export function requestCallLog(res: Response): UpstreamCallLog {
  const state = stateOf(res);
  if (state) return state.upstream;
  // A router used without requestContext() (a test mounting routes alone): a log of its own.
  const log = newCallLog();
  res.locals.requestState = {
    upstream: log,
    started: process.hrtime.bigint(),
    observers: [],
  } satisfies RequestState;
  return log;
}

/** Upstream attempts of a request (for its audit record). */
export function upstreamCalls(res: Response): UpstreamCall[] {
  return stateOf(res)?.upstream.calls ?? [];
}

/** Upstream RequestIds of a finished request (for the access log line). */
export function upstreamRequestIds(res: Response): string[] {
  return stateOf(res)?.upstream.requestIds ?? [];
}
