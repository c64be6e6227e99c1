import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';

// /admin/api/*: JSON for operators and their scripts, authenticated by ADMIN_TOKENS (separate from
// the SCIM tokens: an IdP's token must not read the audit trail). Off (404) when no admin token is
// configured. Each feature adds its routes through a function of its own module, mounted below.

export interface AdminApiDeps {
  adminTokens: string[];
  /** Route groups to mount on the authenticated router (reconciler report, audit, console data). */
  mounts?: Array<(router: Router) => void>;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Constant-time check of `Authorization: Bearer <token>` against every admin token. */
export function adminBearerMatches(req: Request, tokens: string[]): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
  if (!match || tokens.length === 0) return false;
  const presented = digest(match[1]);
  let ok = false;
  for (const token of tokens) ok = timingSafeEqual(digest(token), presented) || ok;
  return ok;
}

export function sendAdminError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ error: { code, message } });
}

export function adminApiRouter(deps: AdminApiDeps): Router {
  const router = express.Router();
  router.use((req: Request, res: Response, next: NextFunction) => {
    if (deps.adminTokens.length === 0) {
      sendAdminError(res, 404, 'admin_disabled', 'the admin API is off: set ADMIN_TOKENS to enable it');
      return;
    }
    if (!adminBearerMatches(req, deps.adminTokens)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="admin"');
      sendAdminError(res, 401, 'unauthorized', 'an admin token (ADMIN_TOKENS) is required');
      return;
    }
    next();
  });
  for (const mount of deps.mounts ?? []) mount(router);
  router.use((req: Request, res: Response) => {
    sendAdminError(res, 404, 'not_found', `no such admin endpoint: ${req.method} ${req.baseUrl}${req.path}`);
  });
  return router;
}
