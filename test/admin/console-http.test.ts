// The console's sign-in, session cookie and page protection over plain HTTP (the browser test
// drives the same routes in Chromium).
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP } from '../../src/admin/console-routes.js';
import { AdminSessions, SESSION_COOKIE } from '../../src/admin/session.js';
import { type Harness, startHarness } from '../helpers/harness.js';

const ADMIN = 'console-http-admin-token-0123';
const OTHER = 'console-http-other-token-4567';

function sessionCookie(res: { headers: Record<string, unknown> }): string | undefined {
  const cookies = (res.headers['set-cookie'] as string[] | undefined) ?? [];
  return cookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`));
}

describe('operator console over HTTP', () => {
  let h: Harness;
  let off: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { ADMIN_TOKENS: `${ADMIN},${OTHER}`, TRUST_PROXY: 'loopback' } });
    off = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
    await off?.close();
  });

  // No cookie jar, no SCIM token: each request carries exactly the cookies the test sets.
  const web = () => supertest(h.app);
  const signIn = (token: string, origin: string | null = 'http://bridge.test') => {
    const req = web().post('/admin/login').set('Host', 'bridge.test').type('form').send({ token });
    return origin === null ? req : req.set('Origin', origin);
  };

  it('is off (404) without ADMIN_TOKENS', async () => {
    expect((await supertest(off.app).get('/admin/')).status).toBe(404);
    expect((await supertest(off.app).get('/admin/login')).status).toBe(404);
    expect((await supertest(off.app).post('/admin/login').type('form').send({ token: ADMIN })).status).toBe(
      404,
    );
  });

  it('serves pages and assets with the strict CSP and no inline script', async () => {
    const login = await web().get('/admin/login');
    expect(login.status).toBe(200);
    expect(login.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toMatch(/script-src 'self'(;|$)/);
    expect(CONSOLE_CSP).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    expect(login.text).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(login.text).not.toMatch(/\sstyle=/);
    const js = await web().get('/admin/assets/console.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect((await web().get('/admin/assets/..%2Fsession.js')).status).toBe(404);
    expect((await web().get('/admin/assets/index.html')).status).toBe(404);
  });

  it('serves every module the console scripts import, and none of them writes markup', async () => {
    const pending = ['console.js'];
    const served = new Set<string>();
    while (pending.length > 0) {
      const name = pending.pop()!;
      if (served.has(name)) continue;
      const res = await web().get(`/admin/assets/${name}`);
      expect(res.status, name).toBe(200);
      expect(res.headers['content-type'], name).toMatch(/^text\/javascript/);
      expect(res.text, name).not.toMatch(/\.(inner|outer)HTML\s*=|insertAdjacentHTML\(|document\.write\(/);
      served.add(name);
      for (const [, next] of res.text.matchAll(/^import [^;]*? from '\.\/([\w-]+\.js)';$/gms))
        pending.push(next);
    }
    expect([...served].sort()).toEqual(['activity.js', 'console.js', 'dom.js', 'people.js', 'unmanaged.js']);
  });

  it('signs in with any admin token: HttpOnly, SameSite=Strict, Path=/admin, expiring cookie', async () => {
    const res = await signIn(OTHER);
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/admin/');
    const cookie = sessionCookie(res)!;
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(cookie).toMatch(/; Path=\/admin/);
    expect(cookie).toMatch(/; Max-Age=28800/);
    expect(cookie).not.toMatch(/Secure/);
    expect(cookie).not.toContain(OTHER);
    const value = cookie.split(';')[0];
    const page = await web().get('/admin/').set('Cookie', value);
    expect(page.status).toBe(200);
    expect(page.text).toContain('/admin/assets/console.js');
    // The same cookie opens the admin API (no bearer header).
    const api = await web().get('/admin/api/overview').set('Cookie', value);
    expect(api.status).toBe(200);
    expect(api.body.counts).toEqual({ users: 0, deactivated: 0, groups: 0, memberships: 0 });
    expect(api.body.health.status).toBe('ready');
  });

  it('marks the cookie Secure when the request came over TLS (X-Forwarded-Proto from a trusted proxy)', async () => {
    const res = await signIn(ADMIN, 'https://bridge.test').set('X-Forwarded-Proto', 'https');
    expect(res.status).toBe(303);
    expect(sessionCookie(res)).toMatch(/; Secure/);
  });

  it('refuses a wrong token, and a sign-in posted from another origin (CSRF)', async () => {
    const wrong = await signIn('not-an-admin-token-xxxxxxxx');
    expect(wrong.status).toBe(303);
    expect(wrong.headers.location).toBe('/admin/login?m=invalid');
    expect(sessionCookie(wrong)).toBeUndefined();
    const cross = await signIn(ADMIN, 'https://evil.example');
    expect(cross.headers.location).toBe('/admin/login?m=origin');
    expect(sessionCookie(cross)).toBeUndefined();
    const none = await signIn(ADMIN, null);
    expect(none.headers.location).toBe('/admin/login?m=origin');
    const fetchSite = await signIn(ADMIN, null).set('Sec-Fetch-Site', 'same-origin');
    expect(sessionCookie(fetchSite)).toBeDefined();
    const page = await web().get('/admin/login?m=%3Cscript%3Ealert(1)%3C/script%3E');
    expect(page.text).not.toContain('alert(1)');
  });

  it('signs out: the session is revoked even if the cookie is replayed; cross-origin sign-out is refused', async () => {
    const value = sessionCookie(await signIn(ADMIN))!.split(';')[0];
    const cross = await web()
      .post('/admin/logout')
      .set('Host', 'bridge.test')
      .set('Origin', 'https://evil.example')
      .set('Cookie', value);
    expect(cross.status).toBe(403);
    expect((await web().get('/admin/').set('Cookie', value)).status).toBe(200);
    const out = await web()
      .post('/admin/logout')
      .set('Host', 'bridge.test')
      .set('Origin', 'http://bridge.test')
      .set('Cookie', value);
    expect(out.status).toBe(303);
    expect(sessionCookie(out)).toMatch(/Max-Age=0/);
    const replay = await web().get('/admin/').set('Cookie', value);
    expect(replay.status).toBe(303);
    expect(replay.headers.location).toBe('/admin/login?m=expired');
    expect((await web().get('/admin/api/overview').set('Cookie', value)).status).toBe(401);
  });

  it('refuses forged, tampered and expired cookies', async () => {
    const value = sessionCookie(await signIn(ADMIN))!
      .split(';')[0]
      .slice(SESSION_COOKIE.length + 1);
    const [expiry, nonce, mac] = value.split('.');
    for (const forged of [
      `${Number(expiry) + 1000}.${nonce}.${mac}`,
      `${expiry}.${nonce}x.${mac}`,
      `${expiry}.${nonce}.${mac.slice(0, -2)}AA`,
      'garbage',
      '',
    ]) {
      const res = await web().get('/admin/').set('Cookie', `${SESSION_COOKIE}=${forged}`);
      expect(res.status).toBe(303);
      expect(res.headers.location).toMatch(/^\/admin\/login/);
    }
    let now = 1_000_000;
    const sessions = new AdminSessions([ADMIN], h.store, { ttlMs: 60_000, now: () => now });
    const issued = sessions.issue(0);
    expect(await sessions.verify(issued)).toBeTruthy();
    now += 60_001;
    expect(await sessions.verify(issued)).toBeUndefined();
    // A token removed from ADMIN_TOKENS ends its sessions.
    const signedByAdmin = new AdminSessions([ADMIN], h.store).issue(0);
    expect(await new AdminSessions([OTHER], h.store).verify(signedByAdmin)).toBeUndefined();
  });

  it('validates the console data endpoints', async () => {
    const admin = (path: string) => web().get(path).set('Authorization', `Bearer ${ADMIN}`);
    expect((await admin('/admin/api/activity?window=0')).status).toBe(400);
    expect((await admin('/admin/api/people')).status).toBe(400);
    expect((await admin('/admin/api/overview?x=1')).status).toBe(400);
    const activity = await admin('/admin/api/activity');
    expect(activity.status).toBe(200);
    expect(activity.body).toMatchObject({
      window: '24h',
      bucketSeconds: 900,
      totals: { ok: 0, refused: 0, failed: 0 },
      actors: [],
    });
    expect(activity.body.buckets).toHaveLength(96);
    const people = await admin('/admin/api/people?q=nobody@example.com');
    expect(people.body).toEqual({ query: 'nobody@example.com', person: null, group: null });
  });
});
