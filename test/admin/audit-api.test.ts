// The audit trail through HTTP: SCIM writes (and failures) leave one record each, readable through
// /admin/api/audit and audit.jsonl; paging, filters, validation, retention, and no secret anywhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditRetention } from '../../src/audit/retention.js';
import { tokenFingerprint } from '../../src/scim-http/auth.js';
import type { AuditRecord } from '../../src/store/audit-types.js';
import { PATCH_OP, patchBody, uniqueName, userBody } from '../e2e/users-support.js';
import { type Harness, startHarness, storeKinds, TEST_TOKEN } from '../helpers/harness.js';

const ADMIN = 'admin-token-for-audit-0123456789';
const OKTA = 'okta-token-0123456789abcdef';
const PASSWORD = 'S3cret-Passw0rd-never-stored!';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';

const kinds = await storeKinds();

describe.each(kinds)('audit trail (%s store)', (kind) => {
  let h: Harness;
  const admin = (path: string) => h.http.get(path).set('Authorization', `Bearer ${ADMIN}`);
  const okta = () => ({ Authorization: `Bearer ${OKTA}` });
  const history = async (resource: string): Promise<AuditRecord[]> => {
    const res = await admin(`/admin/api/audit?resource=${encodeURIComponent(resource)}&limit=500`);
    expect(res.status).toBe(200);
    return res.body.records;
  };

  beforeAll(async () => {
    h = await startHarness({
      store: kind,
      env: {
        SCIM_BEARER_TOKENS: `${TEST_TOKEN},okta:${OKTA}`,
        ADMIN_TOKENS: ADMIN,
        DEACTIVATE_ACTION: 'delete',
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('records a create, patch, deactivate, reactivate and delete of a user, newest first', async () => {
    const userName = uniqueName('audited');
    const created = await h.http
      .post('/scim/v2/Users')
      .set(okta())
      .set('X-Request-Id', 'req-create-1')
      .send(userBody(userName, { password: PASSWORD }));
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const patched = await h.http
      .patch(`/scim/v2/Users/${id}`)
      .set(okta())
      .set('X-Request-Id', 'req-patch-1')
      .send(
        patchBody(
          { op: 'replace', path: 'displayName', value: 'New Display' },
          { op: 'replace', path: 'password', value: PASSWORD },
        ),
      );
    expect(patched.status).toBe(200);
    const off = await h.http
      .patch(`/scim/v2/Users/${id}`)
      .set(okta())
      .send(patchBody({ op: 'replace', path: 'active', value: false }));
    expect(off.status).toBe(200);
    const on = await h.http
      .patch(`/scim/v2/Users/${id}`)
      .send(patchBody({ op: 'replace', path: 'active', value: true }));
    expect(on.status).toBe(200);
    const gone = await h.http.delete(`/scim/v2/Users/${id}`).set(okta());
    expect(gone.status).toBe(204);

    const all = await history(id);
    // Each multi-step operation (and a create) first records that it started (102), with its intent
    // or pending record, before its first CloudIdentity call; its final record replaces that one in
    // the transaction of its final state: one record per request once it finished.
    expect(all.filter((r) => r.status === 102)).toEqual([]);
    const records = all;
    expect(records.map((r) => [r.method, r.status])).toEqual([
      ['DELETE', 204],
      ['PATCH', 200],
      ['PATCH', 200],
      ['PATCH', 200],
      ['POST', 201],
    ]);
    const [del, reactivate, deactivate, patch, create] = records;
    expect(create).toMatchObject({
      actor: 'okta',
      requestId: 'req-create-1',
      resourceType: 'User',
      resourceId: id,
      resourceName: userName,
      scimType: null,
    });
    expect(create.changes.created).toBe(true);
    expect(create.changes.fields?.UserName).toEqual({ from: null, to: userName });
    // One CloudIdentity call: the answer is built from CreateUser's Result.
    expect(create.upstream.map((c) => c.action)).toEqual(['CreateUser']);
    expect(create.upstream.every((c) => typeof c.requestId === 'string' && c.requestId.length > 0)).toBe(
      true,
    );
    expect(create.clientIp).toMatch(/127\.0\.0\.1|::1|::ffff:127\.0\.0\.1/);
    expect(create.durationMs).toBeGreaterThanOrEqual(0);

    expect(patch.changes.attributes).toEqual(['displayName']);
    expect(patch.changes.fields).toEqual({ DisplayName: { from: 'Given Family', to: 'New Display' } });
    expect(patch.upstream.map((c) => c.action)).toEqual(['GetUser', 'UpdateUser']);
    expect(patch.requestId).toBe('req-patch-1');
    expect(all.filter((r) => r.requestId === 'req-patch-1')).toHaveLength(1);

    expect(deactivate.changes.fields?.active).toEqual({ from: true, to: false });
    expect(deactivate.upstream.map((c) => c.action)).toContain('DeleteUser');
    expect(reactivate.actor).toBe(tokenFingerprint(TEST_TOKEN));
    expect(reactivate.changes.fields?.active).toEqual({ from: false, to: true });
    expect(reactivate.upstream.map((c) => c.action)).toContain('CreateUser');

    expect(del.changes.deleted).toBe(true);
    expect(del.resourceName).toBe(userName);
    expect(del.upstream.map((c) => c.action)).toContain('DeleteUser');

    // The same history by userName, any case.
    expect((await history(userName.toUpperCase())).map((r) => r.id)).toEqual(all.map((r) => r.id));
  });

  it('records membership changes on the group, naming the members', async () => {
    const u = await h.http.post('/scim/v2/Users').send(userBody(uniqueName('member')));
    const g = await h.http
      .post('/scim/v2/Groups')
      .send({ schemas: [GROUP_SCHEMA], displayName: `Audit ${Date.now()}` });
    expect(g.status).toBe(201);
    const add = await h.http.patch(`/scim/v2/Groups/${g.body.id}`).send({
      schemas: [PATCH_OP],
      Operations: [{ op: 'add', path: 'members', value: [{ value: u.body.id }] }],
    });
    expect(add.status).toBeLessThan(300);
    const remove = await h.http.patch(`/scim/v2/Groups/${g.body.id}`).send({
      schemas: [PATCH_OP],
      Operations: [{ op: 'remove', path: `members[value eq "${u.body.id}"]` }],
    });
    expect(remove.status).toBeLessThan(300);
    const all = await history(g.body.id);
    const records = all.filter((r) => r.status !== 102);
    expect(records.map((r) => [r.method, r.status])).toEqual([
      ['PATCH', 204],
      ['PATCH', 204],
      ['POST', 201],
    ]);
    expect(records[2].changes.created).toBe(true);
    expect(records[2].resourceName).toBe(g.body.displayName);
    const member = { id: u.body.id, userName: u.body.userName };
    expect(records[1].changes.members).toEqual({ added: [member], removed: [] });
    expect(records[1].upstream.map((c) => c.action)).toContain('AddUserToGroup');
    expect(records[0].changes.members).toEqual({ added: [], removed: [member] });
    expect(records[0].upstream.map((c) => c.action)).toContain('RemoveUserFromGroup');
    // The person's history shows the group changes that added and removed them.
    const person = (await history(u.body.id)).filter((r) => r.resourceType === 'Group' && r.status !== 102);
    expect(person.map((r) => r.id)).toEqual([records[0].id, records[1].id]);
  });

  it('records failures with status, scimType and detail; reads and searches are not audited', async () => {
    const userName = uniqueName('dup');
    expect((await h.http.post('/scim/v2/Users').send(userBody(userName))).status).toBe(201);
    const dup = await h.http.post('/scim/v2/Users').set(okta()).send(userBody(userName));
    expect(dup.status).toBe(409);
    const bad = await h.http
      .post('/scim/v2/Users')
      .set(okta())
      .set('Content-Type', 'application/json')
      .send('{"userName": ');
    expect(bad.status).toBe(400);
    const missing = await h.http.delete('/scim/v2/Users/no-such-user-id').set(okta());
    expect(missing.status).toBe(404);
    await h.http.get('/scim/v2/Users');
    await h.http
      .post('/scim/v2/Users/.search')
      .send({ schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'] });

    const errors = await admin('/admin/api/audit?outcome=error&actor=okta&limit=3');
    expect(errors.status).toBe(200);
    const [notFound, unparsable, conflict] = errors.body.records as AuditRecord[];
    expect(notFound).toMatchObject({ method: 'DELETE', status: 404, resourceId: 'no-such-user-id' });
    expect(unparsable).toMatchObject({
      method: 'POST',
      status: 400,
      scimType: 'invalidSyntax',
      resourceType: 'User',
    });
    expect(unparsable.detail).toMatch(/JSON/);
    expect(conflict).toMatchObject({
      method: 'POST',
      status: 409,
      scimType: 'uniqueness',
      resourceName: userName,
    });
    expect(conflict.detail).toBeTruthy();
    const all: AuditRecord[] = (await admin('/admin/api/audit?limit=500')).body.records;
    expect(all.some((r) => r.method === 'GET' || r.resourceId === '.search')).toBe(false);
    expect(
      (await admin('/admin/api/audit?outcome=ok&limit=500')).body.records.every(
        (r: AuditRecord) => r.status < 400,
      ),
    ).toBe(true);
  });

  it('never holds a token or a password in any record', async () => {
    const res = await h.http.get('/admin/api/audit.jsonl').set('Authorization', `Bearer ${ADMIN}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    for (const secret of [PASSWORD, OKTA, TEST_TOKEN, ADMIN]) expect(res.text).not.toContain(secret);
    expect(res.text).not.toMatch(/"password"/i);
    expect(res.text.trim().split('\n').length).toBeGreaterThan(5);
  });

  it('pages with a cursor, newest first, without gaps or repeats; filters by time', async () => {
    const all: AuditRecord[] = (await admin('/admin/api/audit?limit=500')).body.records;
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await admin(`/admin/api/audit?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.records.map((r: AuditRecord) => r.id));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor && pages < 100);
    expect(seen).toEqual(all.map((r) => r.id));
    expect(pages).toBe(Math.ceil(all.length / 3));
    const ids = seen.map(Number);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);

    const middle = all[Math.floor(all.length / 2)];
    const older = await admin(`/admin/api/audit?until=${encodeURIComponent(middle.at)}&limit=500`);
    expect(older.body.records.every((r: AuditRecord) => r.at < middle.at)).toBe(true);
    const future = await admin('/admin/api/audit?since=2999-01-01T00:00:00Z');
    expect(future.body).toEqual({ records: [], nextCursor: null });
  });

  it('exports every matching record oldest first as JSON lines, across export pages', async () => {
    const res = await h.http.get('/admin/api/audit.jsonl?actor=okta').set('Authorization', `Bearer ${ADMIN}`);
    const lines = res.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRecord);
    const listed: AuditRecord[] = (await admin('/admin/api/audit?actor=okta&limit=500')).body.records;
    expect(lines.map((r) => r.id)).toEqual(listed.map((r) => r.id).reverse());
  });

  it.each([
    ['outcome=errors', /outcome must be one of/],
    ['since=yesterday', /since must be an RFC 3339/],
    ['until=2025-13-45T00:00:00Z', /until must be an RFC 3339/],
    ['since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z', /since must be earlier/],
    ['cursor=42', /cursor is not one this API returned/],
    ['limit=0', /limit must be a whole number/],
    ['limit=100000', /limit must be a whole number/],
    ['sinse=2025-01-01', /unknown parameter 'sinse'/],
    ['actor=a&actor=b', /must be given once/],
    ['resource=', /resource must be 1 to/],
  ])('answers 400 with a clear message for %s', async (query, message) => {
    const res = await admin(`/admin/api/audit?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_parameter');
    expect(res.body.error.message).toMatch(message);
  });

  it('needs an admin token: a SCIM token cannot read the trail', async () => {
    expect((await h.http.get('/admin/api/audit')).status).toBe(401);
    expect((await h.http.get('/admin/api/audit.jsonl')).status).toBe(401);
  });

  it('prunes records past the retention in bounded batches', async () => {
    const old = (n: number) => ({
      at: new Date(Date.UTC(2020, 0, 1, 0, 0, n)).toISOString(),
      actor: 'retention-test',
      clientIp: null,
      requestId: null,
      method: 'PATCH',
      resourceType: 'User' as const,
      resourceId: `old-${n}`,
      resourceName: null,
      status: 200,
      scimType: null,
      detail: null,
      durationMs: 1,
      changes: {},
      upstream: [],
    });
    for (let n = 0; n < 7; n++) await h.store.appendAudit(old(n));
    const before = (await admin('/admin/api/audit?limit=500')).body.records.length;
    const batches: number[] = [];
    const store = {
      ...h.store,
      pruneAudit: async (cutoff: string, limit: number) => {
        const n = await h.store.pruneAudit(cutoff, limit);
        batches.push(n);
        return n;
      },
    };
    const retention = new AuditRetention({
      store: store as typeof h.store,
      retentionDays: 180,
      logger: (await import('pino')).pino({ level: 'silent' }),
      batch: 3,
      pauseMs: 0,
    });
    expect(await retention.pruneNow()).toBe(7);
    expect(batches).toEqual([3, 3, 1]);
    const after: AuditRecord[] = (await admin('/admin/api/audit?limit=500')).body.records;
    expect(after.length).toBe(before - 7);
    expect(after.some((r) => r.actor === 'retention-test')).toBe(false);
    expect(await retention.pruneNow()).toBe(0);
  });
});
