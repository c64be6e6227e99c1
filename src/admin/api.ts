import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { RateLimits } from '../ops/rate-limits.js';
import { StoreUnavailableError } from '../store/errors.js';
import type { AdminSessions } from './session.js';

// /admin/api/*: JSON for operators and their scripts, authenticated by ADMIN_TOKENS (separate from
// the SCIM tokens: an IdP's token must not read the audit trail), as a bearer header or as the
// console's session cookie. Off (404) when no admin token is configured. Each feature adds its
// routes through a function of its own module, mounted below.

export interface AdminApiDeps {
  adminTokens: string[];
  /** The label of each admin token (ADMIN_TOKENS `alice:TOKEN`), same order; undefined when unlabelled. */
  adminTokenLabels?: Array<string | undefined>;
  /** Route groups to mount on the authenticated router (reconciler report, audit, console data). */
  mounts?: Array<(router: Router) => void>;
  /** Console sessions: their cookie is accepted as well as the bearer header. */
  sessions?: AdminSessions;
  /** A wrong admin bearer counts as a failed sign-in of the client address (console-routes.ts). */
  signin?: Pick<RateLimits, 'signinBlocked' | 'signinFailed'>;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Index of the admin token in `Authorization: Bearer <token>` (constant time), or -1. */
export function matchAdminToken(presentedToken: string | undefined, tokens: string[]): number {
  if (presentedToken === undefined || tokens.length === 0) return -1;
  const presented = digest(presentedToken);
  let matched = -1;
  tokens.forEach((token, i) => {
    if (timingSafeEqual(digest(token), presented) && matched < 0) matched = i;
  });
  return matched;
}

/** Constant-time check of `Authorization: Bearer <token>` against every admin token. */
export function adminBearerMatches(req: Request, tokens: string[]): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
  return matchAdminToken(match?.[1], tokens) >= 0;
}

/**
 * Who made an authenticated admin request, for the audit trail: `admin:<label>` for a labelled
 * ADMIN_TOKENS token, `admin:sha256:<12 hex>` otherwise (never the token), whether it came as the
 * bearer or signed the console session in; and whether it came with the session cookie (a browser,
 * whose POSTs must pass the CSRF check) rather than the bearer.
 */
export function adminCaller(res: Response): { actor: string; viaSession: boolean } {
  return res.locals.adminCaller as { actor: string; viaSession: boolean };
}

export function sendAdminError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ error: { code, message } });
}

export function adminApiRouter(deps: AdminApiDeps): Router {
  const router = express.Router();
  router.use(async (req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Cache-Control', 'no-store');
    if (deps.adminTokens.length === 0) {
      sendAdminError(res, 404, 'admin_disabled', 'the admin API is off: set ADMIN_TOKENS to enable it');
      return;
    }
    // A bearer is a sign-in: limited per address like the console's form. A session cookie is not
    // (it cannot be guessed, and a signed-in console keeps working).
    if (req.get('authorization') !== undefined && deps.signin) {
      const wait = await deps.signin.signinBlocked(req.ip);
      if (wait !== undefined) {
        res.setHeader('Retry-After', String(wait));
        sendAdminError(
          res,
          429,
          'too_many_failures',
          `too many failed sign-ins from this address; retry after ${wait} s`,
        );
        return;
      }
      if (!adminBearerMatches(req, deps.adminTokens)) await deps.signin.signinFailed(req.ip);
    }
    // The bearer token needs no store; a session cookie is checked against the sign-outs there.
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '')?.[1];
    const bearerIndex = matchAdminToken(bearer, deps.adminTokens);
    const index = bearerIndex >= 0 ? bearerIndex : await deps.sessions?.tokenIndexOf(req);
    if (index === undefined || index < 0) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="admin"');
      sendAdminError(res, 401, 'unauthorized', 'an admin token (ADMIN_TOKENS) is required');
      return;
    }
    const label = deps.adminTokenLabels?.[index];
    res.locals.adminCaller = {
      actor: `admin:${label ?? `sha256:${digest(deps.adminTokens[index]).toString('hex').slice(0, 12)}`}`,
      viaSession: bearerIndex < 0,
    };
    next();
  });
  for (const mount of deps.mounts ?? []) mount(router);
  router.use((req: Request, res: Response) => {
    sendAdminError(res, 404, 'not_found', `no such admin endpoint: ${req.method} ${req.baseUrl}${req.path}`);
  });
  // JSON errors here too (never the SCIM error shape, never a stack trace).
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const unavailable = err instanceof StoreUnavailableError;
    if (!unavailable) req.log?.error({ err }, 'admin API request failed');
    if (res.headersSent) {
      // Mid-stream (an export): cut the connection so the client sees an incomplete transfer
      // rather than a short file that looks whole.
      res.destroy();
      return;
    }
    if (unavailable) sendAdminError(res, 503, 'store_unavailable', 'the store is unavailable; try again');
    else sendAdminError(res, 500, 'internal', 'the request failed; see the bridge log');
  });
  return router;
}
