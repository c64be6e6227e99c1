import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ACTIONS } from './actions/index.js';
import { newRequestId } from './clock.js';
import { CONTROL_PREFIX, type ControlDeps, handleControl } from './control.js';
import { ApiError, businessErrors, gatewayErrors } from './errors.js';
import type { Authenticator } from './gateway/auth.js';
import { type ResponseMeta, sendError, sendResult } from './gateway/envelope.js';
import { mergeParams, readBody } from './gateway/request.js';

export const API_VERSION = '2023-01-01';

export interface GatewayDeps extends ControlDeps {
  auth: Authenticator;
  region: string;
  latencyMs: number;
  userQuota: number;
  sensitiveWords: readonly string[];
  now: () => number;
  logger: Logger;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The node:http request listener: control API under /_emulator/, everything else is the OpenAPI gateway. */
export function createRequestListener(
  deps: GatewayDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(req, res, deps).catch((err: unknown) => {
      deps.logger.error({ err }, 'emulator request failed unexpectedly');
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end();
    });
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, deps: GatewayDeps): Promise<void> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  const query = new URLSearchParams(rawQuery);
  if (path.startsWith(CONTROL_PREFIX)) return handleControl(req, res, path, query, deps);

  const started = performance.now();
  const method = req.method ?? 'GET';
  const meta: ResponseMeta = {
    RequestId: newRequestId(deps.now()),
    Action: query.get('Action') ?? '',
    Version: query.get('Version') ?? '',
    Region: deps.region,
  };
  let outcome = 'ok';
  try {
    const result = await gateway(req, res, deps, { method, path, rawQuery, query, meta });
    if (result === 'destroyed') {
      outcome = 'socket destroyed (fault)';
      return;
    }
    sendResult(res, meta, result);
  } catch (caught) {
    let err: ApiError;
    if (caught instanceof ApiError) err = caught;
    // Not req.destroyed: a request whose body was read to the end is destroyed too, and a crash
    // after that (e.g. a failed state-file write) must still be answered.
    else if (res.destroyed || req.socket.destroyed) {
      outcome = 'client went away';
      return;
    } else {
      // An emulator bug: answer like the real service would, and make it loud in the log.
      deps.logger.error({ err: caught, action: meta.Action }, 'emulator action crashed');
      err = businessErrors.internalError(caught instanceof Error ? caught.message : String(caught));
    }
    outcome = err.code;
    sendError(res, meta, err);
  } finally {
    if (deps.logger.isLevelEnabled('debug')) {
      deps.logger.debug(
        {
          action: meta.Action,
          method,
          outcome,
          requestId: meta.RequestId,
          ms: Math.round(performance.now() - started),
        },
        'emulator request',
      );
    }
  }
}

interface Incoming {
  method: string;
  path: string;
  rawQuery: string;
  query: URLSearchParams;
  meta: ResponseMeta;
}

/**
 * Order of checks: method → path → Action/Version present → Action/Version known (and GET only for
 * reads) → body (size limit) → authentication → call counted → latency and faults → parameters
 * (JSON) → action.
 */
async function gateway(
  req: IncomingMessage,
  res: ServerResponse,
  deps: GatewayDeps,
  { method, path, rawQuery, query, meta }: Incoming,
): Promise<object | 'destroyed'> {
  if (method !== 'GET' && method !== 'POST') throw gatewayErrors.methodNotAllowed();
  if (path !== '/') throw gatewayErrors.invalidActionOrVersion(meta.Action, meta.Version);
  if (meta.Action === '') throw gatewayErrors.missingParameter('Action');
  if (meta.Version === '') throw gatewayErrors.missingParameter('Version');
  const action = ACTIONS.get(meta.Action);
  if (!action || meta.Version !== API_VERSION) {
    throw gatewayErrors.invalidActionOrVersion(meta.Action, meta.Version);
  }
  // Mutations are POST-only (every SDK sends them as POST); reads accept GET + query as TF uses.
  if (method === 'GET' && !action.readOnly) throw gatewayErrors.methodNotAllowed();

  const body = await readBody(req);
  const caller = deps.auth.verify({ method, path, rawQuery, headers: req.headers, body });

  deps.calls.set(action.name, (deps.calls.get(action.name) ?? 0) + 1);
  const decision = deps.faults.decide(action.name, caller.accessKeyId);
  const delay = deps.latencyMs + decision.latencyMs;
  if (delay > 0) await sleep(delay);

  if (decision.outcome === 'reset') {
    res.socket?.destroy();
    return 'destroyed';
  }
  if (decision.outcome instanceof ApiError) throw decision.outcome;

  const run = () =>
    action.run({
      state: deps.state,
      params: mergeParams(query, body, req.headers['content-type']),
      now: deps.now(),
      userQuota: deps.userQuota,
      sensitiveWords: deps.sensitiveWords,
    });

  if (decision.outcome === 'commitThenReset') {
    try {
      run();
    } catch (err) {
      // The action failed on its own; the client still sees only a dropped connection.
      if (!(err instanceof ApiError)) throw err;
    }
    res.socket?.destroy();
    return 'destroyed';
  }
  return run();
}
