import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { AdminSessionStore } from '../store/audit-types.js';

// Console sessions: after sign-in with an ADMIN_TOKENS token, the browser holds a cookie
// `<expiry>.<nonce>.<mac>`, the MAC keyed by a hash of the token that signed in, so every replica
// sharing ADMIN_TOKENS accepts it, and removing a token from ADMIN_TOKENS ends its sessions.
// Sign-out records the nonce in the store (admin_revoked_sessions, until the cookie would have
// expired): every request with a valid cookie looks it up there (one indexed read, no cache), so a
// signed-out cookie is refused at once on every replica and after a restart. When the store cannot
// answer, cookie sessions are refused (503) rather than trusted; the bearer token still works.

export const SESSION_COOKIE = 'vsb_admin_session';
export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;

const keyOf = (token: string) =>
  createHash('sha256').update(`volc-scim-bridge/admin-session/${token}`).digest();

export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export interface AdminSessionOptions {
  ttlMs?: number;
  now?: () => number;
}

export class AdminSessions {
  private readonly keys: Buffer[];
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(
    tokens: string[],
    private readonly store: AdminSessionStore,
    options: AdminSessionOptions = {},
  ) {
    this.keys = tokens.map(keyOf);
    this.ttlMs = options.ttlMs ?? SESSION_TTL_MS;
    this.now = options.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.keys.length > 0;
  }

  /** A cookie value for a session signed by the token at `tokenIndex`. */
  issue(tokenIndex: number): string {
    const payload = `${this.now() + this.ttlMs}.${randomBytes(16).toString('base64url')}`;
    return `${payload}.${this.mac(this.keys[tokenIndex], payload)}`;
  }

  private mac(key: Buffer, payload: string): string {
    return createHmac('sha256', key).update(payload).digest('base64url');
  }

  /** The cookie's nonce and expiry when it is signed by an admin token and unexpired (no store read). */
  signed(value: string | undefined): { nonce: string; expiresAt: number; tokenIndex: number } | undefined {
    if (!value || value.length > 200) return undefined;
    const [expiry, nonce, mac, extra] = value.split('.');
    if (!expiry || !nonce || !mac || extra !== undefined || !/^\d+$/.test(expiry)) return undefined;
    if (Number(expiry) <= this.now()) return undefined;
    const presented = Buffer.from(mac);
    let tokenIndex = -1;
    this.keys.forEach((key, i) => {
      const expected = Buffer.from(this.mac(key, `${expiry}.${nonce}`));
      const ok = expected.length === presented.length && timingSafeEqual(expected, presented);
      if (ok && tokenIndex < 0) tokenIndex = i;
    });
    return tokenIndex >= 0 ? { nonce, expiresAt: Number(expiry), tokenIndex } : undefined;
  }

  /**
   * The session's nonce when `value` is a live session cookie (signed, unexpired, not signed out),
   * else undefined. Rejects with StoreUnavailableError when the store cannot say.
   */
  async verify(value: string | undefined): Promise<string | undefined> {
    const session = this.signed(value);
    if (!session) return undefined;
    return (await this.store.adminSessionRevoked(session.nonce)) ? undefined : session.nonce;
  }

  fromRequest(req: Request): Promise<string | undefined> {
    return this.verify(readCookie(req, SESSION_COOKIE));
  }

  /** The index in ADMIN_TOKENS of the token that signed the request's live session, else undefined. */
  async tokenIndexOf(req: Request): Promise<number | undefined> {
    const value = readCookie(req, SESSION_COOKIE);
    if ((await this.verify(value)) === undefined) return undefined;
    return this.signed(value)?.tokenIndex;
  }

  /** Signs the session out everywhere (a no-op for a cookie that is not a valid session). */
  async revoke(value: string | undefined): Promise<void> {
    const session = this.signed(value);
    if (!session) return;
    await this.store.revokeAdminSession(session.nonce, new Date(session.expiresAt).toISOString());
  }

  setCookie(req: Request, res: Response, value: string): void {
    res.append('Set-Cookie', cookie(req, value, Math.floor(this.ttlMs / 1000)));
  }

  clearCookie(req: Request, res: Response): void {
    res.append('Set-Cookie', cookie(req, '', 0));
  }
}

/** HttpOnly, SameSite=Strict, scoped to /admin; Secure when the request came over TLS. */
function cookie(req: Request, value: string, maxAgeSeconds: number): string {
  const parts = [`${SESSION_COOKIE}=${value}`, 'Path=/admin', 'HttpOnly', 'SameSite=Strict'];
  parts.push(`Max-Age=${maxAgeSeconds}`);
  if (req.secure) parts.push('Secure');
  return parts.join('; ');
}

/**
 * CSRF check for the console's POSTs (sign-in, sign-out, Reconcile now), on top of SameSite=Strict: the request
 * must come from a page of this origin (Origin header, else Sec-Fetch-Site). Browsers send one of
 * them on every form POST; a request with neither is refused.
 */
export function sameOrigin(req: Request): boolean {
  const origin = req.get('origin');
  // `null`: the browser withheld the origin (a no-referrer policy); Sec-Fetch-Site still tells.
  if (origin !== undefined && origin !== 'null') return origin === `${req.protocol}://${req.get('host')}`;
  return req.get('sec-fetch-site') === 'same-origin';
}
