import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';

// Console sessions: after sign-in with an ADMIN_TOKENS token, the browser holds a cookie
// `<expiry>.<nonce>.<mac>`, the MAC keyed by a hash of the token that signed in. Stateless, so
// every replica sharing ADMIN_TOKENS accepts it, and removing a token from ADMIN_TOKENS ends its
// sessions. Sign-out revokes the nonce in this process (and clears the cookie); other replicas
// accept a copied cookie until it expires: the cookie is HttpOnly and SameSite=Strict, so a page
// cannot read or replay it.

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

export class AdminSessions {
  private readonly keys: Buffer[];
  /** nonce → expiry of signed-out sessions (pruned as they expire). */
  private readonly revoked = new Map<string, number>();

  constructor(
    tokens: string[],
    private readonly ttlMs = SESSION_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.keys = tokens.map(keyOf);
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

  /** The session's nonce when `value` is a live session cookie, else undefined. */
  verify(value: string | undefined): string | undefined {
    if (!value || value.length > 200) return undefined;
    const [expiry, nonce, mac, extra] = value.split('.');
    if (!expiry || !nonce || !mac || extra !== undefined || !/^\d+$/.test(expiry)) return undefined;
    if (Number(expiry) <= this.now() || this.revoked.has(nonce)) return undefined;
    const presented = Buffer.from(mac);
    let ok = false;
    for (const key of this.keys) {
      const expected = Buffer.from(this.mac(key, `${expiry}.${nonce}`));
      ok = (expected.length === presented.length && timingSafeEqual(expected, presented)) || ok;
    }
    return ok ? nonce : undefined;
  }

  fromRequest(req: Request): string | undefined {
    return this.verify(readCookie(req, SESSION_COOKIE));
  }

  revoke(value: string | undefined): void {
    const nonce = this.verify(value);
    if (!nonce || !value) return;
    const now = this.now();
    for (const [n, exp] of this.revoked) if (exp <= now) this.revoked.delete(n);
    this.revoked.set(nonce, Number(value.split('.')[0]));
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
 * CSRF check for the console's POSTs (sign-in, sign-out), on top of SameSite=Strict: the request
 * must come from a page of this origin (Origin header, else Sec-Fetch-Site). Browsers send one of
 * them on every form POST; a request with neither is refused.
 */
export function sameOrigin(req: Request): boolean {
  const origin = req.get('origin');
  // `null`: the browser withheld the origin (a no-referrer policy); Sec-Fetch-Site still tells.
  if (origin !== undefined && origin !== 'null') return origin === `${req.protocol}://${req.get('host')}`;
  return req.get('sec-fetch-site') === 'same-origin';
}
