import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { adminApiRouter } from './admin/api.js';
import { auditRoutes } from './admin/audit-routes.js';
import { consoleDataRoutes } from './admin/console-data.js';
import { consoleRouter } from './admin/console-routes.js';
import { peopleRoutes } from './admin/people-routes.js';
import { reconcilerRoutes } from './admin/reconciler-routes.js';
import { AdminSessions } from './admin/session.js';
import { unmanagedRoutes } from './admin/unmanaged-routes.js';
import type { Config } from './config.js';
import type { RequestContext } from './directory/context.js';
import { buildDirectories, type Directories } from './directory/index.js';
import type { ResourceLocks } from './directory/resource-locks.js';
import { accessLog } from './ops/access-log.js';
import { Metrics } from './ops/metrics.js';
import { RateLimits } from './ops/rate-limits.js';
import { Readiness } from './ops/readiness.js';
import { requestCallLog, requestContext } from './ops/request-context.js';
import { opsRouter } from './ops/routes.js';
import { bearerAuth, scimActor } from './scim-http/auth.js';
import { discoveryRouter } from './scim-http/discovery.js';
import { toScimError } from './scim-http/errors.js';
import { groupsRouter } from './scim-http/groups-routes.js';
import { SCIM_BASE_PATH, scimRouteLabel, sendError } from './scim-http/http.js';
import { recordFailure, requestOrigin } from './scim-http/request-audit.js';
import { rootSearchRouter } from './scim-http/root-search.js';
import { usersRouter } from './scim-http/users-routes.js';
import { configureScimmy } from './scim-model/schemas.js';
import { ScimError } from './scim-model/scim-error.js';
import type { BridgeStore } from './store/types.js';
import { CREDENTIAL_HINT, isCredentialProblem } from './volcengine/errors.js';
import type { CloudIdentityApi } from './volcengine/types.js';

export interface AppDeps {
  config: Config;
  api: CloudIdentityApi;
  store: BridgeStore;
  logger: Logger;
  /** Prometheus registry and instruments; a fresh one when omitted. */
  metrics?: Metrics;
  /** Readiness state; the bridge passes its own so that shutdown can turn it 503. */
  readiness?: Readiness;
  /** The per-resource write locks; tests pass their own to watch requests queue. */
  locks?: ResourceLocks;
  /** The directories and reconciler (bridge.ts builds them to run the reconciler); fresh ones when omitted. */
  directories?: Directories;
  /** Rate limits (bridge.ts opens them on PostgreSQL when DATABASE_URL is set); in memory when omitted. */
  rateLimits?: RateLimits;
  /**
   * CloudIdentity is an emulator (the console says so on every page): bridge.ts also counts a standalone
   * one reached with its development keys. Default: no Volcengine credentials (the in-process emulator).
   */
  emulator?: boolean;
}

/** Builds the Express app (middleware order, routes); listening is main.ts's business. */
export function buildApp(deps: AppDeps): express.Express {
  const { config, api, store, logger } = deps;
  const metrics = deps.metrics ?? new Metrics();
  const readiness =
    deps.readiness ??
    new Readiness({
      store,
      api,
      cacheMs: config.readinessCacheMs,
      livenessStoreTimeoutMs: config.livenessStoreTimeoutMs,
      logger,
      onResult: (ready) => metrics.ready.set(ready ? 1 : 0),
    });
  configureScimmy();
  const app = express();
  app.disable('x-powered-by');
  // X-Forwarded-For/-Proto/-Host are client-controlled unless a proxy in front overwrites them:
  // trusted only as TRUST_PROXY says (default: not at all).
  app.set('trust proxy', config.trustProxy);
  app.set('etag', false);

  // One middleware opens every request: its id and access line, its metrics, its call log.
  app.use(
    requestContext(app, {
      unroutedLabel: scimRouteLabel,
      observers: [accessLog(app, logger, config.logPii), metrics.httpObserver],
    }),
  );

  const directories =
    deps.directories ?? buildDirectories({ config, api, store, logger, metrics, locks: deps.locks });
  const { users, groups, reconciler, replica } = directories;
  const emulator = deps.emulator ?? !config.volcengine;
  const sessions = new AdminSessions(config.adminTokens, store);
  const rateLimits = deps.rateLimits ?? RateLimits.inMemory(config.rateLimits, { metrics, logger });
  const context = (req: Request, res: Response): RequestContext => {
    const known = res.locals.directoryContext as RequestContext | undefined;
    if (known) return known;
    const startedAt = (res.locals.startedAt as number | undefined) ?? Date.now();
    const ctx: RequestContext = {
      deadlineAt: startedAt + config.requestDeadlineMs,
      // Getters: the request's child logger is only made when something is logged, and its
      // origin (client address, actor) only when an audit record is written (reads write none).
      get log() {
        return req.log ?? logger;
      },
      // Who and where, for the audit record the operation writes with its change.
      get origin() {
        return requestOrigin(req, res);
      },
      upstream: requestCallLog(res),
    };
    res.locals.directoryContext = ctx;
    return ctx;
  };

  const scim = express.Router();
  scim.use(bearerAuth(config.scimTokens, config.scimTokenLabels));
  // Before the body parser and routes: a flood past the limit is refused before it costs anything.
  const scimLimit = rateLimits.scimMiddleware(scimActor);
  if (scimLimit) scim.use(scimLimit);
  // Any content type is read as JSON: Okta sends application/json, Entra application/scim+json.
  scim.use(express.json({ type: () => true, limit: config.maxBodyBytes, strict: false }));
  // Refused up front, whatever the route: bodies nested deeper than any SCIM resource (thousands of
  // levels exhaust the stack of the recursive normalisation code), and NUL characters, which
  // PostgreSQL text cannot hold (the store would fail, possibly after CloudIdentity was changed).
  scim.use((req, _res, next) => {
    next(unacceptableInput(req.body, 'request body') ?? unacceptableInput(req.query, 'query string'));
  });
  const listing = {
    publicBaseUrl: config.publicBaseUrl,
    defaultCount: 100,
    maxCount: config.maxPageSize,
    context,
  };
  const userRoutes = { users, ...listing };
  const groupRoutes = { groups, ...listing, inputLimits: { maxMembers: config.maxMembersPerRequest } };
  scim.use('/Users', usersRouter(userRoutes));
  scim.use('/Groups', groupsRouter(groupRoutes));
  scim.use(rootSearchRouter(userRoutes, groupRoutes));
  // After the resources: Express tries routers in order, and /Users and /Groups carry the load.
  scim.use(
    discoveryRouter({ publicBaseUrl: config.publicBaseUrl, maxResults: config.maxPageSize, groups: true }),
  );
  scim.all('/Me', () => {
    throw new ScimError(501, undefined, '/Me is not supported: the bridge authenticates IdPs, not users');
  });
  scim.all('/Bulk', () => {
    throw new ScimError(501, undefined, 'bulk operations are not supported');
  });
  // First: SCIM requests carry the load, and reach their router without testing the other mounts.
  app.use(SCIM_BASE_PATH, scim);

  app.use(
    opsRouter({
      readiness,
      metrics,
      metricsGuard: config.metricsToken ? bearerAuth([config.metricsToken]) : undefined,
    }),
  );
  app.use(
    '/admin/api',
    adminApiRouter({
      adminTokens: config.adminTokens,
      adminTokenLabels: config.adminTokenLabels,
      sessions,
      signin: rateLimits,
      mounts: [
        reconcilerRoutes(reconciler, { status: directories.reconcilerStatus, replica: replica.id }),
        auditRoutes(store),
        consoleDataRoutes({
          store,
          readiness,
          retentionDays: config.auditRetentionDays,
          replica,
          upstream: {
            emulator,
            region: config.region,
            endpoint: config.volcengine ? config.endpoint : null,
          },
        }),
        peopleRoutes(store),
        unmanagedRoutes({ store, reconciler, driftIntervalMs: config.reconcile.driftIntervalMs }),
      ],
    }),
  );
  app.use(
    '/admin',
    consoleRouter({
      adminTokens: config.adminTokens,
      sessions,
      signin: rateLimits,
      context: { emulator, replica: replica.id },
    }),
  );

  app.use((req, _res, next) => {
    next(new ScimError(404, undefined, `no such endpoint: ${req.method} ${req.path}`));
  });
  app.use(async (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const error = bodyParserError(err) ?? pathDecodeError(err) ?? toScimError(err);
    // No line of its own: the access log writes this request's one line, with the error in it.
    if (error.status >= 500) {
      res.locals.failure = {
        err,
        ...(isCredentialProblem(err)
          ? {
              credentialProblem: true,
              hint: CREDENTIAL_HINT,
            }
          : {}),
      };
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    // A refused or failed SCIM write is recorded (in a transaction of its own) before it is answered.
    await recordFailure(store, req, res, error);
    sendError(res, error);
  });
  return app;
}

const MAX_BODY_DEPTH = 64;

/** A 400 for input nested deeper than MAX_BODY_DEPTH or holding U+0000 (iterative: no recursion). */
function unacceptableInput(value: unknown, where: string): ScimError | undefined {
  // Two parallel stacks (node, its depth): no pair allocated per node.
  const nodes: unknown[] = [value];
  const depths: number[] = [1];
  while (nodes.length > 0) {
    const node = nodes.pop();
    const depth = depths.pop()!;
    if (typeof node === 'string') {
      if (node.includes('\u0000')) return nulCharacter(where);
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    if (depth > MAX_BODY_DEPTH)
      return new ScimError(400, 'invalidSyntax', `${where} is nested deeper than ${MAX_BODY_DEPTH} levels`);
    // Keys and values alike (a key is a string: only its characters are checked).
    if (Array.isArray(node))
      for (const child of node) {
        nodes.push(child);
        depths.push(depth + 1);
      }
    else
      for (const key of Object.keys(node)) {
        if (key.includes('\u0000')) return nulCharacter(where);
        nodes.push((node as Record<string, unknown>)[key]);
        depths.push(depth + 1);
      }
  }
  return undefined;
}

function nulCharacter(where: string): ScimError {
  return new ScimError(
    400,
    'invalidValue',
    `${where} contains a NUL character (U+0000), which cannot be stored`,
  );
}

/** The router's URIError for a path segment that is not valid percent-encoding (`/Users/%`): a 400, not a 500. */
function pathDecodeError(err: unknown): ScimError | undefined {
  if (!(err instanceof URIError) || (err as { status?: number }).status !== 400) return undefined;
  return new ScimError(400, undefined, 'the request path is not valid percent-encoding');
}

/** express.json() failures: malformed JSON, too large, bad charset. */
function bodyParserError(err: unknown): ScimError | undefined {
  const e = err as { type?: string; status?: number; message?: string; expose?: boolean };
  // http-errors from body-parser carry a `type`, except a broken compressed body (a zlib error
  // wrapped as a 400 with only `expose`), which would otherwise surface as a 500.
  if (!e || (typeof e.type !== 'string' && e.expose !== true) || err instanceof ScimError) return undefined;
  if (e.type === 'entity.parse.failed') {
    // The parser's own words ("Unexpected token…") describe JavaScript, not the request.
    const position = /position (\d+)/.exec(e.message ?? '')?.[1];
    const where = position === undefined ? '' : ` (at character ${Number(position) + 1})`;
    return new ScimError(400, 'invalidSyntax', `request body is not valid JSON${where}`);
  }
  if (e.type === 'entity.too.large') return new ScimError(413, undefined, 'request body is too large');
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    return new ScimError(
      e.status === 415 ? 415 : 400,
      e.status === 415 ? undefined : 'invalidSyntax',
      e.message ?? 'unreadable request body',
    );
  }
  return undefined;
}
