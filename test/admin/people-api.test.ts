// "Who changed whose access" and "what is the console looking at", through the admin API on both
// stores: a person's current groups and the group changes in their history, a group found by
// name or id with its members and history, which replica answered, whether CloudIdentity is the
// in-process emulator, and the reconciler leader's status as every replica serves it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMULATOR_BANNER } from '../../src/admin/console-routes.js';
import { startBridge } from '../../src/bridge.js';
import { loadConfig } from '../../src/config.js';
import { DEV_ACCESS_KEY, DEV_SECRET_KEY, startEmulator } from '../../src/emulator/index.js';
import type { AuditRecord } from '../../src/store/audit-types.js';
import { patchBody, uniqueName, userBody } from '../e2e/users-support.js';
import { type Harness, startHarness, storeKinds } from '../helpers/harness.js';
import { freshPostgresUrl } from '../helpers/postgres.js';

const ADMIN = 'admin-token-for-people-0123456789';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';

const kinds = await storeKinds();

describe.each(kinds)('people, groups and replicas in the admin API (%s store)', (kind) => {
  let h: Harness;
  const admin = (path: string) => h.http.get(path).set('Authorization', `Bearer ${ADMIN}`);
  const ids = { ada: '', grace: '', eng: '', ops: '' };
  const names = { ada: uniqueName('ada'), grace: uniqueName('grace'), eng: `Engineering ${Date.now()}` };

  beforeAll(async () => {
    h = await startHarness({ store: kind, env: { ADMIN_TOKENS: ADMIN, DEACTIVATE_ACTION: 'delete' } });
    for (const who of ['ada', 'grace'] as const) {
      const res = await h.http.post('/scim/v2/Users').send(userBody(names[who]));
      expect(res.status).toBe(201);
      ids[who] = res.body.id;
    }
    const eng = await h.http
      .post('/scim/v2/Groups')
      .send({ schemas: [GROUP_SCHEMA], displayName: names.eng });
    const ops = await h.http
      .post('/scim/v2/Groups')
      .send({ schemas: [GROUP_SCHEMA], displayName: `Ops ${Date.now()}`, members: [{ value: ids.grace }] });
    expect([eng.status, ops.status]).toEqual([201, 201]);
    ids.eng = eng.body.id;
    ids.ops = ops.body.id;
    const add = await h.http.patch(`/scim/v2/Groups/${ids.eng}`).send(
      patchBody({
        op: 'add',
        path: 'members',
        value: [{ value: ids.ada }, { value: ids.grace }],
      }),
    );
    expect(add.status).toBeLessThan(300);
    const remove = await h.http
      .patch(`/scim/v2/Groups/${ids.eng}`)
      .send(patchBody({ op: 'remove', path: `members[value eq "${ids.grace}"]` }));
    expect(remove.status).toBeLessThan(300);
  });
  afterAll(async () => {
    await h?.close();
  });

  it("lists a person's current groups from the store, by name", async () => {
    const ada = await admin(`/admin/api/people?q=${encodeURIComponent(names.ada.toUpperCase())}`);
    expect(ada.status).toBe(200);
    expect(ada.body.person).toMatchObject({ id: ids.ada, userName: names.ada, active: true });
    expect(ada.body.person.groups).toEqual([{ id: ids.eng, displayName: names.eng }]);
    expect(ada.body.group).toBeNull();
    // Added to Engineering and removed again: only Ops is current.
    const grace = await admin(`/admin/api/people?q=${ids.grace}`);
    expect(grace.body.person.groups.map((g: { id: string }) => g.id)).toEqual([ids.ops]);
  });

  it("includes in a person's history every group change that added or removed them, members named", async () => {
    const res = await admin(`/admin/api/audit?resource=${ids.grace}&limit=50`);
    expect(res.status).toBe(200);
    const groupChanges = (res.body.records as AuditRecord[]).filter((r) => r.resourceType === 'Group');
    // Newest first: removed from Engineering, added to Engineering, added to Ops at its creation.
    expect(groupChanges.map((r) => [r.resourceId, r.method])).toEqual([
      [ids.eng, 'PATCH'],
      [ids.eng, 'PATCH'],
      [ids.ops, 'POST'],
    ]);
    expect(groupChanges[0].resourceName).toBe(names.eng);
    expect(groupChanges[0].changes.members?.removed).toEqual([{ id: ids.grace, userName: names.grace }]);
    expect(groupChanges[1].changes.members?.added).toEqual(
      expect.arrayContaining([
        { id: ids.grace, userName: names.grace },
        { id: ids.ada, userName: names.ada },
      ]),
    );
  });

  it('finds a group by displayName (any case) or id, with its members and history', async () => {
    for (const q of [names.eng.toLowerCase(), ids.eng]) {
      const res = await admin(`/admin/api/people?q=${encodeURIComponent(q)}`);
      expect(res.status).toBe(200);
      expect(res.body.person).toBeNull();
      expect(res.body.group).toMatchObject({
        id: ids.eng,
        displayName: names.eng,
        memberCount: 1,
        members: [{ id: ids.ada, userName: names.ada, active: true }],
      });
    }
    const history = await admin(`/admin/api/audit?resource=${ids.eng}&limit=50`);
    expect((history.body.records as AuditRecord[]).map((r) => r.method)).toEqual(['PATCH', 'PATCH', 'POST']);
  });

  it('keeps the groups a deactivated (deleted upstream) person gets back on reactivation', async () => {
    const off = await h.http
      .patch(`/scim/v2/Users/${ids.grace}`)
      .send(patchBody({ op: 'replace', path: 'active', value: false }));
    expect(off.status).toBe(200);
    const grace = await admin(`/admin/api/people?q=${ids.grace}`);
    expect(grace.body.person.active).toBe(false);
    expect(grace.body.person.restoredOnReactivation.map((g: { id: string }) => g.id)).toEqual([ids.ops]);
  });

  it('answers a name nobody holds with nulls, and a bad query with a JSON 400', async () => {
    const res = await admin('/admin/api/people?q=nobody-at-all');
    expect(res.body).toEqual({ query: 'nobody-at-all', person: null, group: null });
    const bad = await admin('/admin/api/people?q=');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/q must be/);
  });

  it('names the replica that answered and says CloudIdentity is the in-process emulator', async () => {
    const res = await admin('/admin/api/overview');
    expect(res.body.replica).toMatchObject({
      pid: process.pid,
      id: expect.stringContaining(`#${process.pid}-`),
    });
    expect(res.body.upstream).toEqual({ emulator: true, region: expect.any(String), endpoint: null });
    const reconciler = await admin('/admin/api/reconciler');
    expect(reconciler.body.replica).toBe(res.body.replica.id);
  });

  it("publishes the leader's status after each run, with its outcome and age", async () => {
    await h.reconciler.runOnce({ drift: true });
    const res = await admin('/admin/api/reconciler');
    expect(res.body.leader).toBe(true);
    expect(res.body.leaderStatus).toMatchObject({
      role: 'reconciler',
      replica: res.body.replica,
      status: {
        leader: res.body.replica,
        lastRunAt: res.body.lastRunAt,
        lastRun: { outcome: 'ok', failed: 0 },
      },
    });
    expect(res.body.leaderStatus.ageMs).toBeGreaterThanOrEqual(0);
  });
});

describe('with Volcengine credentials', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: {
        ADMIN_TOKENS: ADMIN,
        VOLCENGINE_ACCESS_KEY: 'AKLTtest',
        VOLCENGINE_SECRET_KEY: 'secret-not-shown',
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('does not call CloudIdentity an emulator, and never shows the secret', async () => {
    expect((await supertest(h.app).get('/admin/login')).text).not.toContain('upstream-banner');
    const res = await h.http.get('/admin/api/overview').set('Authorization', `Bearer ${ADMIN}`);
    expect(res.body.upstream).toMatchObject({ emulator: false, endpoint: expect.stringMatching(/^https?:/) });
    expect(res.text).not.toContain('secret-not-shown');
  });
});

describe('a standalone emulator reached with its development keys', () => {
  it('is called an emulator too, on the sign-in page and in the overview', async () => {
    const emulator = await startEmulator({ port: 0 });
    const dataDir = mkdtempSync(join(tmpdir(), 'people-standalone-'));
    const config = loadConfig(
      {
        PORT: '0',
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        ADMIN_TOKENS: ADMIN,
        SCIM_BEARER_TOKENS: 'standalone-scim-token-0123456789',
        VOLCENGINE_ENDPOINT: emulator.url,
        VOLCENGINE_ACCESS_KEY: DEV_ACCESS_KEY,
        VOLCENGINE_SECRET_KEY: DEV_SECRET_KEY,
        RECONCILE_INTERVAL_MS: '0',
      },
      () => 'unused',
    );
    const bridge = await startBridge(config, pino({ level: 'silent' }));
    try {
      const login = await supertest(bridge.server).get('/admin/login');
      expect(login.text).toContain(EMULATOR_BANNER);
      const overview = await supertest(bridge.server)
        .get('/admin/api/overview')
        .set('Authorization', `Bearer ${ADMIN}`);
      expect(overview.body.upstream).toEqual({
        emulator: true,
        region: config.region,
        endpoint: emulator.url,
      });
    } finally {
      await bridge.close();
      await emulator.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

const pg = await freshPostgresUrl();
if ('skip' in pg) console.warn(`[skip] two-replica reconciler status not run: ${pg.skip}`);
else await pg.drop();

describe.skipIf('skip' in pg)('two replicas on PostgreSQL', () => {
  let leader: Harness;
  let follower: Harness;
  beforeAll(async () => {
    leader = await startHarness({ store: 'postgres', env: { ADMIN_TOKENS: ADMIN } });
    follower = await startHarness({ peer: leader, env: { ADMIN_TOKENS: ADMIN } });
  });
  afterAll(async () => {
    await follower?.close();
    await leader?.close();
  });
  const report = async (h: Harness) =>
    (await h.http.get('/admin/api/reconciler').set('Authorization', `Bearer ${ADMIN}`)).body;

  it("a replica that does not lead serves the leader's published status, naming the leader", async () => {
    const before = await report(follower);
    expect(before.leaderStatus).toBeNull();
    const created = await leader.http.post('/scim/v2/Users').send(userBody(uniqueName('replica')));
    expect(created.status).toBe(201);
    await leader.reconciler.runOnce();
    // The second bridge finds the leadership taken: it has no run of its own.
    await follower.reconciler.runOnce();
    const seen = await report(follower);
    const own = await report(leader);
    expect(seen.leader).toBe(false);
    expect(seen.lastRunAt).toBeNull();
    expect(seen.replica).not.toBe(own.replica);
    expect(seen.leaderStatus).toMatchObject({
      role: 'reconciler',
      replica: own.replica,
      status: { leader: own.replica, lastRunAt: own.lastRunAt, lastRun: { outcome: 'ok' } },
    });
    expect(seen.leaderStatus.ageMs).toBeGreaterThanOrEqual(0);
  });
});
