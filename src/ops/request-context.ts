import type { NextFunction, Request, Response } from 'express';
import { newCallLog } from '../volcengine/call-log.js';
import type { UpstreamCall, UpstreamCallLog } from '../volcengine/types.js';

// Per-request state: the CloudIdentity calls made for the request (filled by the client through
// each call's CallOptions, which the request's directory context passes) and the route template
// the request was served by (for logs and metric labels).

export interface RequestState {
  upstream: UpstreamCallLog;
  /** `/scim/v2/Users/:id`, never the raw path; undefined until a route matched. */
  route?: string;
  /** requestContext's option of that name, for routeLabel. */
  unroutedLabel?: RequestContextOptions['unroutedLabel'];
}

export interface RequestContextOptions {
  /**
   * The label of a request no route matched (refused before routing, e.g. 401), from its path: a
   * bounded stand-in the surface that owns the path builds (scim-http/http.ts for SCIM paths), or
   * undefined for 'unmatched'. Never anything a client chose, such as an id.
   */
  unroutedLabel?: (path: string) => string | undefined;
}

/**
 * Early middleware: opens the request's call log and records the template of the route that
 * serves it. Express sets `req.route` just before dispatching to a route's
 * handlers, while `req.baseUrl` is still the mount path of the router holding it; a setter on
 * the request captures both at that moment (after an error, Express has already restored
 * baseUrl, so reading them at the end would lose the mount path).
 */
export function requestContext(options: RequestContextOptions = {}) {
  return (req: Request, res: Response, next: NextFunction) => {
    const state: RequestState = { upstream: newCallLog(), unroutedLabel: options.unroutedLabel };
    res.locals.requestState = state;
    let route: unknown;
    Object.defineProperty(req, 'route', {
      configurable: true,
      enumerable: true,
      get: () => route,
      set: (value: unknown) => {
        route = value;
        const path = (value as { path?: unknown } | undefined)?.path;
        if (typeof path === 'string') state.route = joinRoute(req.baseUrl, path);
      },
    });
    next();
  };
}

function joinRoute(base: string, path: string): string {
  const joined = `${base}${path === '/' ? '' : path}`;
  return joined === '' ? '/' : joined;
}

/**
 * The route label of a finished request: the matched template, else the stand-in of
 * `unroutedLabel` (requests rejected before routing still get a useful label), else 'unmatched'.
 * Never contains ids or anything else a client chose.
 */
export function routeLabel(req: Request, res: Response): string {
  const state = res.locals.requestState as RequestState | undefined;
  if (state?.route) return state.route;
  const path = (req.originalUrl ?? req.url ?? '').split('?')[0];
  return state?.unroutedLabel?.(path) ?? 'unmatched';
}

/** The call log of a request, which its directory context passes to every CloudIdentity call. */
export function requestCallLog(res: Response): UpstreamCallLog {
  const state = res.locals.requestState as RequestState | undefined;
  if (state) return state.upstream;
  // A router used without requestContext() (a test mounting routes alone): a log of its own.
  const log = newCallLog();
  res.locals.requestState = { upstream: log } satisfies RequestState;
  return log;
}

/** Upstream attempts of a request (for its audit record). */
export function upstreamCalls(res: Response): UpstreamCall[] {
  return (res.locals.requestState as RequestState | undefined)?.upstream.calls ?? [];
}

/** Upstream RequestIds of a finished request (for the access log line). */
export function upstreamRequestIds(res: Response): string[] {
  return (res.locals.requestState as RequestState | undefined)?.upstream.requestIds ?? [];
}
