import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { RateLimits } from '../ops/rate-limits.js';
import { StoreUnavailableError } from '../store/errors.js';
import { matchAdminToken } from './api.js';
import { type AdminSessions, readCookie, SESSION_COOKIE, sameOrigin } from './session.js';

// The operator console at /admin: static, read-only pages whose script fetches /admin/api/*.
// Everything is served from ASSETS (src/admin/console, copied to dist/admin/console by the build):
// no CDN, no inline script or style, so the CSP allows only this origin's files. Off (404) when
// ADMIN_TOKENS is unset, like the API.

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const ASSETS_DIR = fileURLToPath(new URL('./console/', import.meta.url));
const ASSETS: Record<string, string> = {
  'console.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'activity.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'unmanaged.js': 'text/javascript; charset=utf-8',
  'people.js': 'text/javascript; charset=utf-8',
  'people.css': 'text/css; charset=utf-8',
};

const cache = new Map<string, string>();
function asset(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(`${ASSETS_DIR}${name}`, 'utf8');
    cache.set(name, text);
  }
  return text;
}

/** Fixed messages only: nothing from the request is reflected into the page. */
const LOGIN_MESSAGES: Record<string, string> = {
  invalid: 'That token is not one of ADMIN_TOKENS.',
  origin: 'The sign-in form must be submitted from this site.',
  expired: 'Your session has ended. Sign in again.',
  'signed-out': 'You are signed out.',
};

const TOO_MANY = (seconds: number) =>
  `Too many failed sign-ins from your address. Try again in ${Math.ceil(seconds / 60)} minute${seconds > 60 ? 's' : ''}.`;

function securityHeaders(res: Response): void {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  // same-origin, not no-referrer: with no-referrer the browser sends `Origin: null` on the
  // console's own form posts, which the CSRF check needs.
  res.setHeader('Referrer-Policy', 'same-origin');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cache-Control', 'no-store');
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** What every page says it is looking at: the emulator banner and the replica that served it. */
export interface PageContext {
  emulator: boolean;
  replica: string;
}

export const EMULATOR_BANNER =
  'CloudIdentity here is the emulator, not Volcengine: these users and groups are not real data. ' +
  'Set VOLCENGINE_ACCESS_KEY and VOLCENGINE_SECRET_KEY (your own) to provision to Volcengine.';

function page(res: Response, name: string, message?: string, status = 200, context?: PageContext): void {
  const replica = context ? escapeHtml(context.replica) : '';
  const html = asset(name)
    .replace('<!--MESSAGE-->', message ? `<p class="message">${message}</p>` : '')
    .replace(
      '<!--BANNER-->',
      context?.emulator ? `<p id="upstream-banner" class="banner" role="status">${EMULATOR_BANNER}</p>` : '',
    )
    .replace(
      '<!--SERVED-BY-->',
      context
        ? `<footer id="served-by" class="muted" data-replica="${replica}">Page served by replica <span class="mono" id="replica-label">${replica}</span>.</footer>`
        : '',
    );
  res.status(status).type('html').send(html);
}

export interface ConsoleDeps {
  adminTokens: string[];
  sessions: AdminSessions;
  /** Failed sign-ins per client address (ADMIN_SIGNIN_MAX_FAILURES): past it, 429 with Retry-After. */
  signin?: Pick<RateLimits, 'signinBlocked' | 'signinFailed' | 'signinSucceeded'>;
  /** The emulator banner and "served by" on every page. */
  context?: PageContext;
}

export function consoleRouter(deps: ConsoleDeps): Router {
  const { sessions } = deps;
  const router = express.Router();
  router.use((_req, res, next) => {
    securityHeaders(res);
    if (deps.adminTokens.length === 0) {
      res.status(404).type('text').send('The operator console is off: set ADMIN_TOKENS to enable it.');
      return;
    }
    next();
  });

  // Browsers ask for it unprompted; an empty answer keeps a 404 out of the console's error log.
  router.get('/favicon.ico', (_req, res) => {
    res.status(204).end();
  });

  router.get('/assets/:name', (req, res) => {
    const type = ASSETS[req.params.name];
    if (!type) {
      res.status(404).type('text').send('no such asset');
      return;
    }
    res.type(type).send(asset(req.params.name));
  });

  router.get('/login', async (req, res) => {
    if (await sessions.fromRequest(req)) {
      res.redirect(303, '/admin/');
      return;
    }
    const key = typeof req.query.m === 'string' ? req.query.m : '';
    page(res, 'login.html', LOGIN_MESSAGES[key], 200, deps.context);
  });

  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 5 });
  router.post('/login', form, async (req: Request, res: Response) => {
    if (!sameOrigin(req)) {
      res.redirect(303, '/admin/login?m=origin');
      return;
    }
    // A blocked address is refused before its token is looked at: a guess gets no answer.
    const wait = await deps.signin?.signinBlocked(req.ip);
    if (wait !== undefined) {
      req.log?.warn(
        { retryAfter: wait },
        'operator console: sign-in refused, too many failed sign-ins from this address (ADMIN_SIGNIN_MAX_FAILURES)',
      );
      res.setHeader('Retry-After', String(wait));
      page(res, 'login.html', TOO_MANY(wait), 429, deps.context);
      return;
    }
    const token = typeof req.body?.token === 'string' ? req.body.token.trim() : undefined;
    const index = matchAdminToken(token, deps.adminTokens);
    if (index < 0) {
      await deps.signin?.signinFailed(req.ip);
      (req.log ?? undefined)?.warn('operator console: sign-in with a token that is not in ADMIN_TOKENS');
      res.redirect(303, '/admin/login?m=invalid');
      return;
    }
    await deps.signin?.signinSucceeded(req.ip);
    sessions.setCookie(req, res, sessions.issue(index));
    res.redirect(303, '/admin/');
  });

  router.post('/logout', async (req, res) => {
    if (!sameOrigin(req)) {
      res.status(403).type('text').send('sign-out must come from the console itself');
      return;
    }
    // The browser forgets the cookie either way; the store's record is what refuses a copy of it.
    sessions.clearCookie(req, res);
    await sessions.revoke(readCookie(req, SESSION_COOKIE));
    res.redirect(303, '/admin/login?m=signed-out');
  });

  // The console itself: one page; anything without a live session goes to sign-in.
  router.get(['/', ''], async (req, res) => {
    if (!(await sessions.fromRequest(req))) {
      const hadCookie = readCookie(req, SESSION_COOKIE) !== undefined;
      if (hadCookie) sessions.clearCookie(req, res);
      res.redirect(303, hadCookie ? '/admin/login?m=expired' : '/admin/login');
      return;
    }
    page(res, 'index.html', undefined, 200, deps.context);
  });

  router.use((_req, res) => {
    res.status(404).type('text').send('no such console page');
  });
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof StoreUnavailableError) {
      res
        .status(503)
        .type('text')
        .send('The store is unavailable, so the console cannot check (or record) sign-outs. Try again.');
      return;
    }
    req.log?.error({ err }, 'operator console request failed');
    res.status(500).type('text').send('The request failed; see the bridge log.');
  });
  return router;
}
