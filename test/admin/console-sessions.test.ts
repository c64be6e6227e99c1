// Console sign-out outlives the process and holds on every replica: the signed-out session is
// kept in the store (admin_revoked_sessions) and every cookie request checks it there.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Express } from 'express';
import supertest from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/admin/session.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { openStore } from '../../src/store/index.js';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import type { BridgeStore } from '../../src/store/types.js';
import { startHarness, storeKinds } from '../helpers/harness.js';

const ADMIN = 'console-sessions-admin-token-0123';
const HOST = 'bridge.test';

async function signIn(app: Express): Promise<string> {
  const res = await supertest(app)
    .post('/admin/login')
    .set('Host', HOST)
    .set('Origin', `http://${HOST}`)
    .type('form')
    .send({ token: ADMIN });
  expect(res.status).toBe(303);
  const cookie = ((res.headers['set-cookie'] as unknown as string[]) ?? []).find((c) =>
    c.startsWith(`${SESSION_COOKIE}=`),
  );
  expect(cookie).toBeDefined();
  return cookie!.split(';')[0];
}

async function signOut(app: Express, cookie: string): Promise<void> {
  const res = await supertest(app)
    .post('/admin/logout')
    .set('Host', HOST)
    .set('Origin', `http://${HOST}`)
    .set('Cookie', cookie);
  expect(res.status).toBe(303);
  expect(res.headers.location).toBe('/admin/login?m=signed-out');
}

/** The console page and the API with only the cookie: 200 while signed in. */
async function expectSignedIn(app: Express, cookie: string, signedIn: boolean): Promise<void> {
  const page = await supertest(app).get('/admin/').set('Cookie', cookie);
  const api = await supertest(app).get('/admin/api/activity').set('Cookie', cookie);
  if (signedIn) {
    expect(page.status).toBe(200);
    expect(api.status).toBe(200);
  } else {
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe('/admin/login?m=expired');
    expect(api.status).toBe(401);
  }
}

const env = { ADMIN_TOKENS: ADMIN };
const kinds = await storeKinds();

describe('console sign-out', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {});
  });

  it('survives a restart of the bridge (embedded store in a DATA_DIR)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'console-sessions-'));
    cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    let fileStore = await openStore({ dataDir });
    let h = await startHarness({ env, wrapStore: () => fileStore });
    const cookie = await signIn(h.app);
    const other = await signIn(h.app);
    await expectSignedIn(h.app, cookie, true);
    await signOut(h.app, cookie);
    await expectSignedIn(h.app, cookie, false);
    await h.close();
    await fileStore.close();

    // A new process: the same DATA_DIR, nothing kept in memory.
    fileStore = await openStore({ dataDir });
    h = await startHarness({ env, wrapStore: () => fileStore });
    cleanup.push(async () => {
      await h.close();
      await fileStore.close();
    });
    await expectSignedIn(h.app, cookie, false);
    // Other sessions are untouched.
    await expectSignedIn(h.app, other, true);
  });

  it.runIf(kinds.includes('postgres'))('holds on every replica sharing PostgreSQL', async () => {
    const a = await startHarness({ env, store: 'postgres' });
    const b = await startHarness({ env, peer: a });
    cleanup.push(async () => {
      await b.close();
      await a.close();
    });
    const cookie = await signIn(a.app);
    await expectSignedIn(b.app, cookie, true);
    await signOut(a.app, cookie);
    await expectSignedIn(b.app, cookie, false);
    await expectSignedIn(a.app, cookie, false);
  });

  it('refuses cookie sessions (503) while the store cannot say whether they were signed out', async () => {
    let failing = false;
    const h = await startHarness({
      env,
      wrapStore: (store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            if (prop === 'adminSessionRevoked' && failing)
              return async () => {
                throw new StoreUnavailableError('test: store down');
              };
            const value = Reflect.get(target, prop, receiver);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        }) as BridgeStore,
    });
    cleanup.push(() => h.close());
    const cookie = await signIn(h.app);
    failing = true;
    const page = await supertest(h.app).get('/admin/').set('Cookie', cookie);
    expect(page.status).toBe(503);
    expect(page.text).toMatch(/store is unavailable/);
    const api = await supertest(h.app).get('/admin/api/activity').set('Cookie', cookie);
    expect(api.status).toBe(503);
    expect(api.body.error.code).toBe('store_unavailable');
    // The admin token itself needs no store lookup.
    const bearer = await supertest(h.app).get('/admin/api/activity').set('Authorization', `Bearer ${ADMIN}`);
    expect(bearer.status).toBe(200);
    failing = false;
    await expectSignedIn(h.app, cookie, true);
  });

  it.each(kinds)('keeps only unexpired sign-outs (%s store)', async (kind) => {
    const h = await startHarness({ env, store: kind });
    cleanup.push(() => h.close());
    const past = new Date(Date.now() - 1000).toISOString();
    const future = new Date(Date.now() + 3_600_000).toISOString();
    await h.store.revokeAdminSession('expired-nonce', past);
    await h.store.revokeAdminSession('live-nonce', future);
    await h.store.revokeAdminSession('live-nonce', future);
    expect(await h.store.adminSessionRevoked('live-nonce')).toBe(true);
    expect(await h.store.adminSessionRevoked('expired-nonce')).toBe(false);
    expect(await h.store.adminSessionRevoked('never-seen')).toBe(false);
    if (kind === 'embedded') {
      const rows = (h.store as SqliteStore).db.prepare('SELECT nonce FROM admin_revoked_sessions').all();
      expect(rows).toEqual([{ nonce: 'live-nonce' }]);
    }
  });
});
