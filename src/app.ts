import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { Config } from './config.js';
import type { RequestContext } from './directory/context.js';
import { UserDirectory } from './directory/users.js';
import { bearerAuth } from './scim/auth.js';
import { discoveryRouter } from './scim/discovery.js';
import { isCredentialProblem, ScimError, toScimError } from './scim/errors.js';
import { SCIM_BASE_PATH, sendError } from './scim/http.js';
import { configureScimmy } from './scim/schemas.js';
import { usersRouter } from './scim/users-routes.js';
import type { BridgeStore } from './store/types.js';
import type { CloudIdentityApi } from './volcengine/types.js';

export interface AppDeps {
  config: Config;
  api: CloudIdentityApi;
  store: BridgeStore;
  logger: Logger;
}

const SAFE_REQUEST_ID = /^[\w.:-]{1,128}$/;

/** Builds the Express app (middleware order, routes); listening is main.ts's business. */
export function buildApp({ config, api, store, logger }: AppDeps): express.Express {
  configureScimmy();
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', true);
  app.set('etag', false);

  app.use((req, res, next) => {
    const incoming = req.get('x-request-id');
    const id = incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = id;
    res.setHeader('X-Request-Id', id);
    next();
  });
  app.use(
    pinoHttp({
      logger,
      genReqId: (_req, res) => (res as Response).locals.requestId,
      customLogLevel: (_req, res, err) =>
        err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({
          id: req.id,
          method: req.method,
          url: req.url,
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  const users = new UserDirectory(api, store, {
    deactivateAction: config.deactivateAction,
    filterScanLimit: config.filterScanLimit,
    logger,
  });
  const context = (req: Request, res: Response): RequestContext => {
    const started = (res.locals.startedAt as number | undefined) ?? Date.now();
    return { deadlineAt: started + config.requestDeadlineMs, log: req.log ?? logger };
  };

  const scim = express.Router();
  scim.use((_req, res, next) => {
    res.locals.startedAt = Date.now();
    next();
  });
  scim.use(bearerAuth(config.scimTokens));
  // Any content type is read as JSON: Okta sends application/json, Entra application/scim+json.
  scim.use(express.json({ type: () => true, limit: config.maxBodyBytes, strict: false }));
  scim.use(
    discoveryRouter({ publicBaseUrl: config.publicBaseUrl, maxResults: config.maxPageSize, groups: false }),
  );
  scim.use(
    '/Users',
    usersRouter({
      users,
      publicBaseUrl: config.publicBaseUrl,
      defaultCount: 100,
      maxCount: config.maxPageSize,
      context,
    }),
  );
  scim.all('/Me', () => {
    throw new ScimError(501, undefined, '/Me is not supported: the bridge authenticates IdPs, not users');
  });
  scim.all('/Bulk', () => {
    throw new ScimError(501, undefined, 'bulk operations are not supported');
  });
  app.use(SCIM_BASE_PATH, scim);

  app.use((req, _res, next) => {
    next(new ScimError(404, undefined, `no such endpoint: ${req.method} ${req.path}`));
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const error = bodyParserError(err) ?? toScimError(err);
    const log = req.log ?? logger;
    if (error.status >= 500) {
      log.error({ err, credentialProblem: isCredentialProblem(err) || undefined }, 'request failed');
      if (isCredentialProblem(err)) {
        log.error(
          'CloudIdentity refused the bridge credentials: check VOLCENGINE_ACCESS_KEY, VOLCENGINE_SECRET_KEY, VOLCENGINE_SESSION_TOKEN and the machine clock',
        );
      }
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    sendError(res, error);
  });
  return app;
}

/** express.json() failures: malformed JSON, too large, bad charset. */
function bodyParserError(err: unknown): ScimError | undefined {
  const e = err as { type?: string; status?: number; message?: string };
  if (!e || typeof e.type !== 'string') return undefined;
  if (e.type === 'entity.parse.failed')
    return new ScimError(400, 'invalidSyntax', `request body is not valid JSON: ${e.message}`);
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
