// Accounts no IdP manages and Reconcile now, over HTTP against the emulator, on both stores:
// GET /admin/api/unmanaged serves the drift pass's snapshot from the store (accounts made in
// CloudIdentity directly, their groups, renames and tombstone collisions, the age of the data);
// POST /admin/api/reconciler/run runs the settle and drift pass at once, audited with the admin's
// label, refused across origins, while a pass runs, too soon after the previous one, and on a
// replica that does not lead.
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/admin/session.js';
import { loadConfig } from '../../src/config.js';
import { uniqueName, userBody } from '../e2e/users-support.js';
import { controlPost } from '../emulator/helpers.js';
import { ApiGate } from '../helpers/api-gate.js';
import { type Harness, startHarness, storeKinds, TEST_TOKEN } from '../helpers/harness.js';

const ALICE = 'alice-admin-token-0123456789';
const PLAIN = 'plain-admin-token-0123456789';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';

const kinds = await storeKinds();

describe.each(kinds)('accounts no IdP manages and Reconcile now (%s store)', (kind) => {
  let h: Harness;
  const gate = new ApiGate();
  const scim = () => ({ Authorization: `Bearer ${TEST_TOKEN}` });
  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  const web = () => supertest(h.app);
  const control = (path: string, body: unknown) => controlPost(h.emulator.url, path, body);
  const names = {
    managed: uniqueName('managed'),
    consoleMade: uniqueName('console.made'),
    synced: uniqueName('synced'),
    renamed: uniqueName('renamed'),
    tombstone: uniqueName('tombstone'),
  };
  let consoleMadeId = '';
  let syncedId = '';
  let consoleGroupId = '';
  let cookie = '';

  beforeAll(async () => {
    h = await startHarness({
      store: kind,
      wrapApi: (api) => gate.wrap(api),
      env: {
        ADMIN_TOKENS: `alice:${ALICE},${PLAIN}`,
        DEACTIVATE_ACTION: 'delete',
        TRUST_PROXY: 'loopback',
      },
    });
    // A managed user in a SCIM group.
    const managed = await h.http.post('/scim/v2/Users').set(scim()).send(userBody(names.managed));
    expect(managed.status).toBe(201);
    const group = await h.http
      .post('/scim/v2/Groups')
      .set(scim())
      .send({ schemas: [GROUP_SCHEMA], displayName: `team-${kind}`, members: [{ value: managed.body.id }] });
    expect(group.status).toBe(201);
    // Accounts made in CloudIdentity directly: through the emulator's control API (as its console
    // or its own sync would) and through CloudIdentity's API without the bridge.
    const made = await control('users', {
      UserName: names.consoleMade,
      DisplayName: 'Made In Console',
      Email: names.consoleMade,
    });
    expect(made.status).toBe(201);
    consoleMadeId = made.json.UserId;
    const synced = await control('users', { UserName: names.synced, Source: 'Sync' });
    expect(synced.status).toBe(201);
    syncedId = synced.json.UserId;
    const consoleGroup = await h.client.createGroup({ GroupName: `console-${kind}`, JoinType: 'Manual' });
    consoleGroupId = consoleGroup.GroupId;
    await h.client.addUserToGroup({ GroupId: consoleGroupId, UserId: consoleMadeId });
    // A rename in the console and a tombstone whose userName an account made there took.
    const renamed = await h.http.post('/scim/v2/Users').set(scim()).send(userBody(names.renamed));
    const renamedRecord = await h.store.getUser(renamed.body.id);
    await h.client.updateUser({ UserId: renamedRecord!.upstreamUserId!, UserName: `${names.renamed}.x` });
    const tomb = await h.http.post('/scim/v2/Users').set(scim()).send(userBody(names.tombstone));
    const off = await h.http
      .patch(`/scim/v2/Users/${tomb.body.id}`)
      .set(scim())
      .send({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'replace', path: 'active', value: false }],
      });
    expect(off.status).toBe(200);
    await h.settle();
    expect((await control('users', { UserName: names.tombstone })).status).toBe(201);
    // A console session signed in with alice's token (its label names her in the trail).
    const signIn = await web()
      .post('/admin/login')
      .set('Host', 'bridge.test')
      .set('Origin', 'http://bridge.test')
      .type('form')
      .send({ token: ALICE });
    const set = (signIn.headers['set-cookie'] as unknown as string[]).find((c) =>
      c.startsWith(`${SESSION_COOKIE}=`),
    );
    cookie = set!.split(';')[0];
  });
  afterAll(async () => {
    await h?.close();
  });

  it("the emulator's control API makes such accounts and refuses bad ones", async () => {
    expect((await control('users', { UserName: names.synced })).status).toBe(409);
    expect((await control('users', { UserName: '' })).status).toBe(400);
    expect((await control('users', { UserName: 'x.y', Source: 'Ldap' })).json.error).toMatch(/Source/);
    expect((await control('users', [])).status).toBe(400);
  });

  it('needs an admin token or session', async () => {
    expect((await web().get('/admin/api/unmanaged')).status).toBe(401);
    expect((await web().post('/admin/api/reconciler/run')).status).toBe(401);
    expect((await web().post('/admin/api/reconciler/run').set(bearer(TEST_TOKEN))).status).toBe(401);
  });

  it('before any drift pass: an empty, incomplete snapshot that says so', async () => {
    const res = await web().get('/admin/api/unmanaged').set(bearer(PLAIN));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ total: 0, accounts: [], findings: [], findingsTotal: 0 });
    expect(res.body.snapshot).toMatchObject({ complete: false, completedAt: null, asOf: null, sweep: null });
  });

  it('refuses a console POST from another origin or with no origin (CSRF), running nothing', async () => {
    const before = h.reconciler.report().totals.ticks;
    const none = await web()
      .post('/admin/api/reconciler/run')
      .set('Host', 'bridge.test')
      .set('Cookie', cookie);
    expect(none.status).toBe(403);
    expect(none.body.error.code).toBe('cross_origin');
    const evil = await web()
      .post('/admin/api/reconciler/run')
      .set('Host', 'bridge.test')
      .set('Origin', 'https://evil.example')
      .set('Cookie', cookie);
    expect(evil.status).toBe(403);
    expect(h.reconciler.report().totals.ticks).toBe(before);
  });

  it('answers 409 while a pass runs on this replica, without starting a second', async () => {
    const held = gate.hold('listUsers');
    const tick = h.reconciler.runOnce({ drift: true });
    await held.reached;
    const res = await web().post('/admin/api/reconciler/run').set(bearer(PLAIN));
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('reconcile_running');
    expect(res.body.error.message).toMatch(/running/);
    held.release();
    await tick;
  });

  it('runs settle and drift at once from the console, audited with the admin label, and shows the result', async () => {
    const res = await web()
      .post('/admin/api/reconciler/run')
      .set('Host', 'bridge.test')
      .set('Origin', 'http://bridge.test')
      .set('Cookie', cookie);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ran: true, actor: 'admin:alice', failed: 0, pending: 0 });
    expect(res.body.walk).toMatchObject({ sweepFinished: true });
    expect(res.body.unmanagedTotal).toBe(3);
    expect(res.body.snapshot.complete).toBe(true);
    expect(res.body.summary).toMatch(/settled 0 intent/);

    const audit = await web().get('/admin/api/audit?actor=admin:alice').set(bearer(PLAIN));
    expect(audit.status).toBe(200);
    const [record] = audit.body.records;
    expect(record).toMatchObject({ actor: 'admin:alice', method: 'reconcile now', status: 200 });
    expect(record.changes.note).toBe(res.body.summary);
    expect(JSON.stringify(audit.body)).not.toContain(ALICE);
  });

  it('is debounced: a second run at once is 429 with Retry-After', async () => {
    const res = await web().post('/admin/api/reconciler/run').set(bearer(PLAIN));
    expect(res.status).toBe(429);
    expect(res.body.error.code).toBe('too_soon');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('lists the accounts no SCIM resource maps, with Source, created time and groups', async () => {
    const res = await web().get('/admin/api/unmanaged').set(bearer(PLAIN));
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(3);
    const byName = new Map((res.body.accounts as Array<Record<string, unknown>>).map((a) => [a.userName, a]));
    expect([...byName.keys()].sort()).toEqual([names.consoleMade, names.synced, names.tombstone].sort());
    expect(byName.get(names.consoleMade)).toMatchObject({
      userId: consoleMadeId,
      displayName: 'Made In Console',
      email: names.consoleMade,
      source: 'Manual',
      groups: [{ groupId: consoleGroupId, groupName: `console-${kind}` }],
    });
    // CloudIdentity's CreatedTime (+08:00), as UTC.
    const created = byName.get(names.consoleMade)!.createdTime as string;
    expect(created).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$/);
    const upstream = (await h.client.getUser({ UserId: consoleMadeId })).CreatedTime;
    expect(Date.parse(created)).toBe(Date.parse(upstream));
    expect(byName.get(names.synced)).toMatchObject({ userId: syncedId, source: 'Sync', groups: [] });
    expect(byName.has(names.managed)).toBe(false);
    expect(res.body.snapshot).toMatchObject({ complete: true, ageSeconds: expect.any(Number) });
    expect(res.body.snapshot.completedAt).toEqual(expect.any(String));
    expect(res.body.snapshot.sweep.number).toBeGreaterThan(1);
  });

  it('lists the renames and tombstone collisions the drift pass reported', async () => {
    const res = await web().get('/admin/api/unmanaged').set(bearer(PLAIN));
    const kinds = Object.fromEntries((res.body.findings as Array<{ kind: string }>).map((f) => [f.kind, f]));
    expect(res.body.findingsTotal).toBe(2);
    expect(kinds.userRenamedUpstream).toMatchObject({
      userName: names.renamed,
      upstreamUserName: `${names.renamed}.x`,
    });
    expect(kinds.tombstoneCollision).toMatchObject({
      userName: names.tombstone,
      upstreamUserName: names.tombstone,
    });
  });

  it('filters and pages, and refuses bad parameters with a JSON error', async () => {
    const q = await web()
      .get(`/admin/api/unmanaged?q=${encodeURIComponent('made in')}`)
      .set(bearer(PLAIN));
    expect(q.body.total).toBe(1);
    expect(q.body.accounts[0].userId).toBe(consoleMadeId);
    const page = await web().get('/admin/api/unmanaged?limit=2&offset=2').set(bearer(PLAIN));
    expect(page.body).toMatchObject({ total: 3, offset: 2, limit: 2 });
    expect(page.body.accounts).toHaveLength(1);
    const literal = await web().get('/admin/api/unmanaged?q=%25').set(bearer(PLAIN));
    expect(literal.body.total).toBe(0);
    for (const bad of ['limit=0', 'limit=201', 'offset=-1', 'sort=name']) {
      const res = await web().get(`/admin/api/unmanaged?${bad}`).set(bearer(PLAIN));
      expect(res.status, bad).toBe(400);
      expect(res.body.error.code).toBe('invalid_parameter');
    }
  });

  it('drops an account once it is deleted upstream and a walk has ended', async () => {
    await h.client.deleteUser({ UserId: syncedId });
    const run = await h.reconciler.runOnce({ drift: true });
    expect(run.unmanaged).toMatchObject({ sweepFinished: true });
    const res = await web().get('/admin/api/unmanaged').set(bearer(PLAIN));
    expect(res.body.total).toBe(2);
    expect(res.body.accounts.map((a: { userId: string }) => a.userId)).not.toContain(syncedId);
  });

  it.runIf(kind === 'postgres')(
    'on a replica that does not lead: the same snapshot, and Reconcile now answers 409 not_leader',
    async () => {
      const peer = await startHarness({ peer: h, env: { ADMIN_TOKENS: `alice:${ALICE}` } });
      try {
        const mine = await web().get('/admin/api/unmanaged').set(bearer(PLAIN));
        const theirs = await supertest(peer.app).get('/admin/api/unmanaged').set(bearer(ALICE));
        expect(theirs.body.accounts).toEqual(mine.body.accounts);
        expect(theirs.body.snapshot.completedAt).toBe(mine.body.snapshot.completedAt);
        const res = await supertest(peer.app).post('/admin/api/reconciler/run').set(bearer(ALICE));
        expect(res.status).toBe(409);
        expect(res.body.error.code).toBe('not_leader');
        expect(res.body.error.message).toMatch(/another replica leads/);
      } finally {
        await peer.close();
      }
    },
  );
});

describe('the walk of a larger tenant, a few pages per pass (embedded store)', () => {
  let h: Harness;
  beforeAll(async () => {
    // Budget 1: one ListUsers page (100 users) and one ListGroupMembers page per pass.
    h = await startHarness({ env: { ADMIN_TOKENS: ALICE, RECONCILE_DRIFT_BUDGET: '1' } });
    h.emulator.seedUsers(150, 'walk-user-');
  });
  afterAll(async () => {
    await h?.close();
  });
  const unmanaged = async () =>
    (await supertest(h.app).get('/admin/api/unmanaged?limit=1').set(bearer(ALICE))).body;
  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

  it('lists page by page, says it is incomplete until the walk ends, then drops what is gone', async () => {
    const users = (await h.client.listUsers({ PageNumber: 1, PageSize: 2 })).Users;
    const groups = [];
    for (const name of ['walk-a', 'walk-b']) {
      const g = await h.client.createGroup({ GroupName: name, JoinType: 'Manual' });
      groups.push(g.GroupId);
    }
    await h.client.addUserToGroup({ GroupId: groups[0], UserId: users[0].UserId });
    await h.client.addUserToGroup({ GroupId: groups[1], UserId: users[0].UserId });

    const first = await h.reconciler.runOnce({ drift: true });
    expect(first.unmanaged).toMatchObject({
      usersListed: 100,
      groupsWalked: 1,
      unmanagedFound: 100,
      sweepFinished: false,
    });
    let body = await unmanaged();
    expect(body.total).toBe(100);
    expect(body.snapshot).toMatchObject({ complete: false, completedAt: null });
    expect(body.snapshot.sweep).toMatchObject({ number: 1, usersListed: 100, upstreamUsers: 150 });

    const second = await h.reconciler.runOnce({ drift: true });
    expect(second.unmanaged).toMatchObject({ usersListed: 50, groupsWalked: 1, sweepFinished: true });
    body = await unmanaged();
    expect(body.total).toBe(150);
    expect(body.snapshot.complete).toBe(true);
    const withGroups = await supertest(h.app)
      .get(`/admin/api/unmanaged?q=${encodeURIComponent(users[0].UserName)}`)
      .set(bearer(ALICE));
    expect(withGroups.body.accounts[0].groups.map((g: { groupName: string }) => g.groupName)).toEqual([
      'walk-a',
      'walk-b',
    ]);

    // Deleted upstream: still listed while the next walk is under way, gone when it ends.
    await h.client.deleteUser({ UserId: users[1].UserId });
    await h.reconciler.runOnce({ drift: true });
    expect((await unmanaged()).total).toBe(150);
    const last = await h.reconciler.runOnce({ drift: true });
    expect(last.unmanaged?.sweepFinished).toBe(true);
    body = await unmanaged();
    expect(body.total).toBe(149);
    expect(body.snapshot.sweep.number).toBe(3);
  });
});

describe('ADMIN_TOKENS labels', () => {
  const gen = () => 'generated-token-0123456789';
  it('splits `label:TOKEN` like the SCIM tokens, checks the token length and refuses a label used twice', () => {
    const config = loadConfig({ ADMIN_TOKENS: `alice:${ALICE}, ${PLAIN}` }, gen);
    expect(config.adminTokens).toEqual([ALICE, PLAIN]);
    expect(config.adminTokenLabels).toEqual(['alice', undefined]);
    expect(() => loadConfig({ ADMIN_TOKENS: 'alice:short-token' }, gen)).toThrow(/at least 16 characters/);
    expect(() => loadConfig({ ADMIN_TOKENS: `alice:${ALICE},alice:${PLAIN}` }, gen)).toThrow(
      /ADMIN_TOKENS: a label names two tokens/,
    );
  });
});
