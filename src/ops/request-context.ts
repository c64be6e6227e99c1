import { AsyncLocalStorage } from 'node:async_hooks';
import type { NextFunction, Request, Response } from 'express';
import { SCIM_BASE_PATH } from '../scim/http.js';

// Per-request state that deeper layers (the CloudIdentity client observer) can reach without
// threading it through every call: the upstream RequestIds of the calls made for this request, and
// the route template the request was served by (for logs and metric labels).

export interface RequestState {
  /** CloudIdentity RequestIds of every attempt made while serving this request, in order. */
  upstreamRequestIds: string[];
  /** Every upstream attempt (action, RequestId, outcome), for the audit trail; bounded like the ids. */
  upstreamCalls: Array<{ action: string; requestId?: string; outcome: string }>;
  /** `/scim/v2/Users/:id`, never the raw path; undefined until a route matched. */
  route?: string;
}

const storage = new AsyncLocalStorage<RequestState>();

/** At most this many ids are kept per request (a scan may make many calls). */
const MAX_IDS = 50;

export function recordUpstreamRequestId(requestId: string | undefined): void {
  if (!requestId) return;
  const state = storage.getStore();
  if (state && state.upstreamRequestIds.length < MAX_IDS) state.upstreamRequestIds.push(requestId);
}

/** One upstream attempt of the request being served: its RequestId and, for the audit, the action. */
export function recordUpstreamAttempt(e: { action: string; outcome: string; requestId?: string }): void {
  recordUpstreamRequestId(e.requestId);
  const state = storage.getStore();
  if (state && state.upstreamCalls.length < MAX_IDS) {
    state.upstreamCalls.push({ action: e.action, outcome: e.outcome, requestId: e.requestId });
  }
}

/** A client observer that only records attempts (when no Metrics observer is wired). */
export const requestContextObserver = { onAttempt: recordUpstreamAttempt };

/**
 * First middleware: opens the AsyncLocalStorage scope for the request and records the template
 * of the route that serves it. Express sets `req.route` just before dispatching to a route's
 * handlers, while `req.baseUrl` is still the mount path of the router holding it; a setter on
 * the request captures both at that moment (after an error, Express has already restored
 * baseUrl, so reading them at the end would lose the mount path).
 */
export function requestContext() {
  return (req: Request, res: Response, next: NextFunction) => {
    const state: RequestState = { upstreamRequestIds: [], upstreamCalls: [] };
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
    storage.run(state, next);
  };
}

function joinRoute(base: string, path: string): string {
  const joined = `${base}${path === '/' ? '' : path}`;
  return joined === '' ? '/' : joined;
}

const SCIM_ENDPOINTS = new Set([
  'Users',
  'Groups',
  'Me',
  'Bulk',
  'ServiceProviderConfig',
  'ResourceTypes',
  'Schemas',
  '.search',
]);

/**
 * The route label of a finished request: the matched template, else a bounded stand-in built
 * from the path (requests rejected before routing, e.g. 401, still get a useful label), else
 * 'unmatched'. Never contains ids or anything else a client chose.
 */
export function routeLabel(req: Request, res: Response): string {
  const state = res.locals.requestState as RequestState | undefined;
  if (state?.route) return state.route;
  const path = (req.originalUrl ?? req.url ?? '').split('?')[0];
  if (path === SCIM_BASE_PATH || path.startsWith(`${SCIM_BASE_PATH}/`)) {
    const [endpoint, ...rest] = path.slice(SCIM_BASE_PATH.length + 1).split('/');
    if (!SCIM_ENDPOINTS.has(endpoint)) return 'unmatched';
    const parts = rest.filter(Boolean);
    if (parts.length === 0) return `${SCIM_BASE_PATH}/${endpoint}`;
    if (parts.length === 1) {
      const sub = parts[0] === '.search' ? '.search' : endpoint === 'ResourceTypes' ? ':name' : ':id';
      return `${SCIM_BASE_PATH}/${endpoint}/${sub}`;
    }
    return 'unmatched';
  }
  return 'unmatched';
}

/** Upstream attempts of a request (for its audit record). */
export function upstreamCalls(res: Response): RequestState['upstreamCalls'] {
  return (res.locals.requestState as RequestState | undefined)?.upstreamCalls ?? [];
}

/** Upstream RequestIds of a finished request (for the access log line). */
export function upstreamRequestIds(res: Response): string[] {
  return (res.locals.requestState as RequestState | undefined)?.upstreamRequestIds ?? [];
}
