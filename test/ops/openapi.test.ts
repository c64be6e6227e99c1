import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Response } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Metrics } from '../../src/ops/metrics.js';
import { type Harness, startHarness, TEST_TOKEN } from '../helpers/harness.js';
import { SchemaValidator } from './json-schema.js';

type Json = Record<string, unknown>;
type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
const METHODS: Method[] = ['get', 'post', 'put', 'patch', 'delete'];

const spec = parse(readFileSync('openapi.yaml', 'utf8')) as Json & {
  paths: Record<string, Record<string, Json>>;
};
const validator = new SchemaValidator(spec);

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const SEARCH = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
const METRICS_TOKEN = 'contract-metrics-token-0123';
const ADMIN_TOKEN = 'contract-admin-token-0123456';
// Described here, served by a module merged separately (the reconciler, issue 11): until then the
// bridge answers 404 and the coverage check below does not ask for a success.
const NOT_SERVED_YET = new Set(['get /admin/api/reconciler']);

describe('openapi.yaml', () => {
  it('passes `redocly lint` (offline, recommended rules)', async () => {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['node_modules/@redocly/cli/bin/cli.js', 'lint', 'openapi.yaml', '--format', 'stylish'],
      { env: { ...process.env, REDOCLY_TELEMETRY: 'off', NO_COLOR: '1' }, timeout: 60_000 },
    ).catch((e: { stdout: string; stderr: string }) => {
      throw new Error(`redocly lint failed:\n${e.stdout}\n${e.stderr}`);
    });
    const out = `${stdout}${stderr}`;
    expect(out).toContain('Your API description is valid');
    expect(out).not.toMatch(/You have \d+ (warning|error)/);
  }, 90_000);

  it('the contract validator rejects what the description does not allow', () => {
    const schema = (name: string) => ({ $ref: `#/components/schemas/${name}` });
    const error = { schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '404', detail: 'x' };
    expect(validator.validate(schema('Error'), error)).toEqual([]);
    expect(validator.validate(schema('Error'), { ...error, status: 404 })).toEqual([
      '$.status: expected string, got number',
    ]);
    expect(validator.validate(schema('Error'), { ...error, scimType: 'oops' })).toHaveLength(1);
    const user = {
      schemas: [USER],
      id: 'u1',
      userName: 'a',
      meta: { resourceType: 'User', created: 'yesterday' },
    };
    expect(validator.validate(schema('User'), user)).toEqual([
      '$.meta.created: not an RFC 3339 date-time: yesterday',
    ]);
    expect(validator.validate(schema('User'), { schemas: [USER], id: 'u1', nickname2: 'x' })).toEqual([
      "$: unexpected property 'nickname2'",
    ]);
    expect(validator.validate(schema('User'), { schemas: [USER] })).toEqual(["$: missing required 'id'"]);
    expect(
      validator.validate(schema('UserList'), {
        schemas: [],
        totalResults: 0,
        startIndex: 1,
        itemsPerPage: 0,
      }),
    ).toEqual(["$: missing required 'Resources'"]);
    expect(
      validator.validate(schema('Readiness'), { status: 'maybe', checkedAt: '2026-01-01T00:00:00Z' }),
    ).toHaveLength(1);
  });

  it('is OpenAPI 3.1 with a bearer security scheme and every route of the bridge', () => {
    expect(spec.openapi).toMatch(/^3\.1\./);
    const schemes = (spec.components as Json).securitySchemes as Record<string, Json>;
    expect(schemes.scimBearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(spec.paths).sort()).toEqual(
      [
        '/healthz',
        '/readyz',
        '/metrics',
        '/scim/v2/ServiceProviderConfig',
        '/scim/v2/ResourceTypes',
        '/scim/v2/ResourceTypes/{name}',
        '/scim/v2/Schemas',
        '/scim/v2/Schemas/{id}',
        '/scim/v2/Users',
        '/scim/v2/Users/{id}',
        '/scim/v2/Users/.search',
        '/scim/v2/Groups',
        '/scim/v2/Groups/{id}',
        '/scim/v2/Groups/.search',
        '/scim/v2/.search',
        '/scim/v2/Me',
        '/scim/v2/Bulk',
        '/admin/api/audit',
        '/admin/api/audit.jsonl',
        '/admin/api/audit.csv',
        '/admin/api/overview',
        '/admin/api/activity',
        '/admin/api/people',
        '/admin/api/reconciler',
        '/admin/api/reconciler/run',
        '/admin/api/unmanaged',
      ].sort(),
    );
  });

  it('every example matches its schema', () => {
    let checked = 0;
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const method of METHODS) {
        const op = item[method] as Json | undefined;
        if (!op) continue;
        const media: Array<[string, Json]> = [];
        const body = op.requestBody ? validator.deref(op.requestBody) : undefined;
        for (const [type, m] of Object.entries((body?.content ?? {}) as Record<string, Json>))
          media.push([`${method} ${path} request ${type}`, m]);
        for (const [status, r] of Object.entries(op.responses as Record<string, Json>)) {
          for (const [type, m] of Object.entries((validator.deref(r).content ?? {}) as Record<string, Json>))
            media.push([`${method} ${path} ${status} ${type}`, m]);
        }
        for (const [where, m] of media) {
          const examples = [
            ...(m.example !== undefined ? [m.example] : []),
            ...Object.values((m.examples ?? {}) as Record<string, Json>).map((e) => validator.deref(e).value),
          ];
          for (const example of examples) {
            expect(validator.validate(m.schema as Json, example), where).toEqual([]);
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
  });
});

describe('the running app honours openapi.yaml', () => {
  let h: Harness;
  /** `${method} ${template}` → statuses seen */
  const seen = new Map<string, Set<number>>();

  beforeAll(async () => {
    h = await startHarness({
      env: {
        METRICS_TOKEN,
        ADMIN_TOKENS: ADMIN_TOKEN,
        MAX_BODY_BYTES: '4096',
        READINESS_CACHE_MS: '0',
        REQUEST_DEADLINE_MS: '3000',
      },
      emulator: { userQuota: 6 },
      metrics: new Metrics({ defaultMetrics: false }),
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Checks a real response against the operation and records it. Returns the response. */
  async function call(
    method: Method,
    template: string,
    request: Promise<Response> | Response,
    sentBody?: unknown,
  ): Promise<Response> {
    const res = await request;
    const op = spec.paths[template]?.[method] as Json | undefined;
    expect(op, `${method} ${template} is in openapi.yaml`).toBeDefined();
    const where = `${method.toUpperCase()} ${template} → ${res.status} ${res.text.slice(0, 300)}`;
    const declared = (op!.responses as Record<string, Json>)[String(res.status)];
    expect(declared, `${where}: status not declared`).toBeDefined();
    const response = validator.deref(declared);
    const content = response.content as Record<string, Json> | undefined;
    if (content) {
      const type = String(res.headers['content-type'] ?? '')
        .split(';')[0]
        .trim();
      expect(Object.keys(content), `${where}: content type`).toContain(type);
      const body = ['text/plain', 'application/x-ndjson', 'text/csv'].includes(type)
        ? res.text
        : JSON.parse(res.text);
      expect(validator.validate(content[type].schema as Json, body), where).toEqual([]);
    } else {
      expect(res.text ?? '', `${where}: no body expected`).toBe('');
    }
    for (const [name, h] of Object.entries((response.headers ?? {}) as Record<string, Json>)) {
      const value = res.headers[name.toLowerCase()];
      if (['ETag', 'Location', 'WWW-Authenticate', 'X-Request-Id'].includes(name))
        expect(value, `${where}: header ${name}`).toBeDefined();
      if (value === undefined) continue;
      const schema = validator.deref(h).schema as Json;
      const typed = schema.type === 'integer' ? Number(value) : value;
      expect(validator.validate(schema, typed), `${where}: header ${name}`).toEqual([]);
    }
    if (sentBody !== undefined && res.status < 300) {
      const body = validator.deref(op!.requestBody);
      const media = (body.content as Record<string, Json>)['application/scim+json'];
      expect(validator.validate(media.schema as Json, sentBody), `${where}: request body`).toEqual([]);
    }
    const key = `${method} ${template}`;
    if (!seen.has(key)) seen.set(key, new Set());
    seen.get(key)!.add(res.status);
    return res;
  }
  const send = (method: Method, template: string, url: string, body: unknown, token = TEST_TOKEN) =>
    call(
      method,
      template,
      h.http[method](url)
        .set('Authorization', `Bearer ${token}`)
        .send(body as object),
      body,
    );
  const noAuth = (method: Method, template: string, url: string) =>
    call(method, template, h.http[method](url).set('Authorization', ''));

  it('operations endpoints', async () => {
    await call('get', '/healthz', h.http.get('/healthz'));
    await call('get', '/readyz', h.http.get('/readyz'));
    h.emulator.setFaults([{ action: 'ListUsers', probability: 1, fault: 'reset' }]);
    const down = await call('get', '/readyz', h.http.get('/readyz'));
    h.emulator.setFaults([]);
    expect(down.status).toBe(503);
    // Liveness fails once the store has not answered for LIVENESS_STORE_TIMEOUT_MS.
    const cut = await startHarness({
      env: { LIVENESS_STORE_TIMEOUT_MS: '1', READINESS_CACHE_MS: '0' },
      wrapStore: (store) =>
        new Proxy(store, {
          get: (target, prop, receiver) =>
            prop === 'ping'
              ? () => Promise.reject(new Error('store down'))
              : Reflect.get(target, prop, receiver),
        }),
    });
    try {
      expect((await cut.http.get('/readyz')).status).toBe(503);
      await new Promise((r) => setTimeout(r, 20));
      const dead = await call('get', '/healthz', cut.http.get('/healthz'));
      expect(dead.status).toBe(503);
    } finally {
      await cut.close();
    }
    await call('get', '/metrics', h.http.get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`));
    await noAuth('get', '/metrics', '/metrics');
  });

  it('discovery endpoints', async () => {
    await call('get', '/scim/v2/ServiceProviderConfig', h.http.get('/scim/v2/ServiceProviderConfig'));
    await noAuth('get', '/scim/v2/ServiceProviderConfig', '/scim/v2/ServiceProviderConfig');
    const types = await call('get', '/scim/v2/ResourceTypes', h.http.get('/scim/v2/ResourceTypes'));
    await call('get', '/scim/v2/ResourceTypes', h.http.get('/scim/v2/ResourceTypes?filter=id eq "User"'));
    await noAuth('get', '/scim/v2/ResourceTypes', '/scim/v2/ResourceTypes');
    for (const t of types.body.Resources as Json[])
      await call('get', '/scim/v2/ResourceTypes/{name}', h.http.get(`/scim/v2/ResourceTypes/${t.id}`));
    await call('get', '/scim/v2/ResourceTypes/{name}', h.http.get('/scim/v2/ResourceTypes/Printer'));
    const schemas = await call('get', '/scim/v2/Schemas', h.http.get('/scim/v2/Schemas'));
    await call('get', '/scim/v2/Schemas', h.http.get('/scim/v2/Schemas?filter=id pr'));
    for (const s of schemas.body.Resources as Json[])
      await call('get', '/scim/v2/Schemas/{id}', h.http.get(`/scim/v2/Schemas/${s.id}`));
    await call('get', '/scim/v2/Schemas/{id}', h.http.get('/scim/v2/Schemas/urn:nope'));
  });

  it('users: every operation, success and error', async () => {
    const body = {
      schemas: [USER, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
      userName: 'contract.bjensen@example.com',
      externalId: 'c-1',
      name: { givenName: 'Barbara', familyName: 'Jensen' },
      emails: [{ value: 'contract.bjensen@example.com', type: 'work', primary: true }],
      phoneNumbers: [{ value: '+86 138 0013 8000', type: 'mobile' }],
      password: 'never-stored-1!',
      active: true,
      'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': {
        employeeNumber: '7',
        department: 'Ops',
      },
    };
    const created = await send('post', '/scim/v2/Users', '/scim/v2/Users', body);
    expect(created.status).toBe(201);
    expect(created.body.password).toBeUndefined();
    const id = created.body.id as string;
    await send('post', '/scim/v2/Users', '/scim/v2/Users', {
      schemas: [USER],
      userName: 'CONTRACT.bjensen@example.com',
    });
    await send('post', '/scim/v2/Users', '/scim/v2/Users', { schemas: [USER], displayName: 'no userName' });
    await send('post', '/scim/v2/Users', '/scim/v2/Users', { schemas: [USER], userName: 'x'.repeat(5000) });
    await call(
      'post',
      '/scim/v2/Users',
      h.http.post('/scim/v2/Users').set('Content-Type', 'application/json; charset=latin1').send('{}'),
    );
    await noAuth('post', '/scim/v2/Users', '/scim/v2/Users');

    await call(
      'get',
      '/scim/v2/Users',
      h.http.get(`/scim/v2/Users?filter=${encodeURIComponent('userName eq "contract.bjensen@example.com"')}`),
    );
    await call(
      'get',
      '/scim/v2/Users',
      h.http.get('/scim/v2/Users?startIndex=1&count=2&attributes=userName'),
    );
    await call('get', '/scim/v2/Users', h.http.get('/scim/v2/Users?filter=userName%20zz%20%22x%22'));
    await noAuth('get', '/scim/v2/Users', '/scim/v2/Users');
    const search = { schemas: [SEARCH], filter: 'externalId eq "c-1"', startIndex: 1, count: 10 };
    await send('post', '/scim/v2/Users/.search', '/scim/v2/Users/.search', search);
    await send('post', '/scim/v2/Users/.search', '/scim/v2/Users/.search', {
      schemas: [SEARCH],
      filter: 'nope(',
    });
    await noAuth('post', '/scim/v2/Users/.search', '/scim/v2/Users/.search');

    await call('get', '/scim/v2/Users/{id}', h.http.get(`/scim/v2/Users/${id}`));
    await call(
      'get',
      '/scim/v2/Users/{id}',
      h.http.get(`/scim/v2/Users/${id}?excludedAttributes=emails,meta`),
    );
    await call(
      'get',
      '/scim/v2/Users/{id}',
      h.http.get('/scim/v2/Users/00000000-0000-4000-8000-000000000000'),
    );
    await noAuth('get', '/scim/v2/Users/{id}', `/scim/v2/Users/${id}`);

    const replaced = await send('put', '/scim/v2/Users/{id}', `/scim/v2/Users/${id}`, {
      ...body,
      displayName: 'Babs Jensen',
    });
    expect(replaced.status).toBe(200);
    await call(
      'put',
      '/scim/v2/Users/{id}',
      h.http.put(`/scim/v2/Users/${id}`).set('If-Match', 'W/"999"').send(body),
    );
    await send('put', '/scim/v2/Users/{id}', '/scim/v2/Users/00000000-0000-4000-8000-000000000000', body);
    await send('put', '/scim/v2/Users/{id}', `/scim/v2/Users/${id}`, { schemas: [USER] });
    await noAuth('put', '/scim/v2/Users/{id}', `/scim/v2/Users/${id}`);

    const patch = { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: false }] };
    const deactivated = await send('patch', '/scim/v2/Users/{id}', `/scim/v2/Users/${id}`, patch);
    expect(deactivated.body.active).toBe(false);
    await send('patch', '/scim/v2/Users/{id}', `/scim/v2/Users/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'replace', value: { active: true } }],
    });
    await send('patch', '/scim/v2/Users/{id}', `/scim/v2/Users/${id}`, { schemas: [PATCH], Operations: 'x' });
    await send('patch', '/scim/v2/Users/{id}', '/scim/v2/Users/00000000-0000-4000-8000-000000000000', patch);
    await noAuth('patch', '/scim/v2/Users/{id}', `/scim/v2/Users/${id}`);

    // Upstream failures, as the IdP sees them.
    h.emulator.setFaults([{ action: 'GetUser', probability: 1, fault: 'InternalError' }]);
    expect((await call('get', '/scim/v2/Users/{id}', h.http.get(`/scim/v2/Users/${id}`))).status).toBe(502);
    h.emulator.setFaults([{ action: 'ListUsers', probability: 1, fault: 'FlowLimitExceeded' }]);
    expect((await call('get', '/scim/v2/Users', h.http.get('/scim/v2/Users'))).status).toBe(429);
    h.emulator.setFaults([{ action: 'ListUsers', probability: 1, fault: 'ConcurrentException' }]);
    expect((await call('get', '/scim/v2/Users', h.http.get('/scim/v2/Users'))).status).toBe(503);
    h.emulator.setFaults([{ action: 'GetUser', probability: 1, fault: 'latency', latencyMs: 3_500 }]);
    expect((await call('get', '/scim/v2/Users/{id}', h.http.get(`/scim/v2/Users/${id}`))).status).toBe(504);
    h.emulator.setFaults([]);

    await call('delete', '/scim/v2/Users/{id}', h.http.delete(`/scim/v2/Users/${id}`));
    await call('delete', '/scim/v2/Users/{id}', h.http.delete(`/scim/v2/Users/${id}`));
    await noAuth('delete', '/scim/v2/Users/{id}', `/scim/v2/Users/${id}`);
  }, 60_000);

  it('groups: every operation, success and error', async () => {
    const member = await send('post', '/scim/v2/Users', '/scim/v2/Users', {
      schemas: [USER],
      userName: 'contract.member@example.com',
    });
    const body = {
      schemas: [GROUP],
      displayName: 'Contract Engineers',
      externalId: 'g-1',
      members: [{ value: member.body.id }],
    };
    const created = await send('post', '/scim/v2/Groups', '/scim/v2/Groups', body);
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    await send('post', '/scim/v2/Groups', '/scim/v2/Groups', {
      schemas: [GROUP],
      displayName: 'contract engineers',
    });
    await send('post', '/scim/v2/Groups', '/scim/v2/Groups', { schemas: [GROUP] });
    await noAuth('post', '/scim/v2/Groups', '/scim/v2/Groups');

    await call(
      'get',
      '/scim/v2/Groups',
      h.http.get(`/scim/v2/Groups?filter=${encodeURIComponent('displayName eq "Contract Engineers"')}`),
    );
    await call('get', '/scim/v2/Groups', h.http.get('/scim/v2/Groups?excludedAttributes=members'));
    await call('get', '/scim/v2/Groups', h.http.get('/scim/v2/Groups?filter=members%20pr'));
    await noAuth('get', '/scim/v2/Groups', '/scim/v2/Groups');
    await send('post', '/scim/v2/Groups/.search', '/scim/v2/Groups/.search', {
      schemas: [SEARCH],
      filter: 'externalId eq "g-1"',
    });
    await send('post', '/scim/v2/Groups/.search', '/scim/v2/Groups/.search', {
      schemas: [SEARCH],
      filter: '(',
    });
    await noAuth('post', '/scim/v2/Groups/.search', '/scim/v2/Groups/.search');

    await call('get', '/scim/v2/Groups/{id}', h.http.get(`/scim/v2/Groups/${id}`));
    await call('get', '/scim/v2/Groups/{id}', h.http.get('/scim/v2/Groups/NoSuchGroup1'));
    await noAuth('get', '/scim/v2/Groups/{id}', `/scim/v2/Groups/${id}`);

    await send('put', '/scim/v2/Groups/{id}', `/scim/v2/Groups/${id}`, { ...body, members: [] });
    await send('put', '/scim/v2/Groups/{id}', '/scim/v2/Groups/NoSuchGroup1', body);
    await noAuth('put', '/scim/v2/Groups/{id}', `/scim/v2/Groups/${id}`);

    const add = {
      schemas: [PATCH],
      Operations: [{ op: 'add', path: 'members', value: [{ value: member.body.id }] }],
    };
    expect((await send('patch', '/scim/v2/Groups/{id}', `/scim/v2/Groups/${id}`, add)).status).toBe(204);
    const remove = {
      schemas: [PATCH],
      Operations: [{ op: 'remove', path: `members[value eq "${member.body.id}"]` }],
    };
    expect(
      (await send('patch', '/scim/v2/Groups/{id}', `/scim/v2/Groups/${id}?attributes=displayName`, remove))
        .status,
    ).toBe(200);
    await send('patch', '/scim/v2/Groups/{id}', `/scim/v2/Groups/${id}`, {
      schemas: [PATCH],
      Operations: [{ op: 'move' }],
    });
    await send('patch', '/scim/v2/Groups/{id}', '/scim/v2/Groups/NoSuchGroup1', add);
    await noAuth('patch', '/scim/v2/Groups/{id}', `/scim/v2/Groups/${id}`);

    await call('delete', '/scim/v2/Groups/{id}', h.http.delete(`/scim/v2/Groups/${id}`));
    await call('delete', '/scim/v2/Groups/{id}', h.http.delete(`/scim/v2/Groups/${id}`));
    await noAuth('delete', '/scim/v2/Groups/{id}', `/scim/v2/Groups/${id}`);
  }, 60_000);

  it('root search over users and groups', async () => {
    await send('post', '/scim/v2/Users', '/scim/v2/Users', {
      schemas: [USER],
      userName: 'contract.root@example.com',
      externalId: 'root-1',
    });
    const found = await send('post', '/scim/v2/.search', '/scim/v2/.search', {
      schemas: [SEARCH],
      filter: 'externalId eq "root-1"',
    });
    expect(found.body.totalResults).toBe(1);
    await send('post', '/scim/v2/.search', '/scim/v2/.search', { schemas: [SEARCH], count: 5 });
    await send('post', '/scim/v2/.search', '/scim/v2/.search', { schemas: [SEARCH], filter: 'userName eq' });
    await noAuth('post', '/scim/v2/.search', '/scim/v2/.search');
  });

  it('unsupported endpoints and a reached quota', async () => {
    for (const method of METHODS) {
      await call(method, '/scim/v2/Me', h.http[method]('/scim/v2/Me'));
      await noAuth(method, '/scim/v2/Me', '/scim/v2/Me');
    }
    await send('post', '/scim/v2/Bulk', '/scim/v2/Bulk', {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:BulkRequest'],
      Operations: [],
    });
    await noAuth('post', '/scim/v2/Bulk', '/scim/v2/Bulk');
    // The emulator allows 6 users: CreateUser ends in ReachedQuotaLimit → 403.
    let status = 0;
    for (let i = 0; i < 8 && status !== 403; i++) {
      status = (
        await send('post', '/scim/v2/Users', '/scim/v2/Users', {
          schemas: [USER],
          userName: `quota.${i}@example.com`,
        })
      ).status;
    }
    expect(status).toBe(403);
  });

  it('admin endpoints: audit trail, export, console data', async () => {
    const admin = (template: string, url: string, token = ADMIN_TOKEN) =>
      call('get', template, h.http.get(url).set('Authorization', `Bearer ${token}`));
    const page = await admin('/admin/api/audit', '/admin/api/audit?limit=2');
    expect(page.body.records.length).toBe(2);
    await admin('/admin/api/audit', `/admin/api/audit?limit=2&cursor=${page.body.nextCursor}`);
    await admin('/admin/api/audit', '/admin/api/audit?outcome=error&limit=500');
    await admin('/admin/api/audit', '/admin/api/audit?outcome=nope');
    await admin('/admin/api/audit', '/admin/api/audit', TEST_TOKEN);
    const jsonl = await admin('/admin/api/audit.jsonl', '/admin/api/audit.jsonl');
    for (const line of jsonl.text.trim().split('\n'))
      expect(validator.validate({ $ref: '#/components/schemas/AuditRecord' }, JSON.parse(line))).toEqual([]);
    await admin('/admin/api/audit.jsonl', '/admin/api/audit.jsonl?since=never');
    await admin('/admin/api/audit', '/admin/api/audit?outcome=refused&limit=500');
    await admin('/admin/api/audit.csv', '/admin/api/audit.csv?outcome=refused');
    await admin('/admin/api/audit.csv', '/admin/api/audit.csv?until=2025-02-31');
    await admin('/admin/api/overview', '/admin/api/overview');
    await admin('/admin/api/overview', '/admin/api/overview', TEST_TOKEN);
    await admin('/admin/api/activity', '/admin/api/activity');
    await admin('/admin/api/activity', '/admin/api/activity?window=7d');
    await admin('/admin/api/activity', '/admin/api/activity?window=999');
    const user = (await h.http.get('/scim/v2/Users?count=1')).body.Resources[0];
    await admin('/admin/api/people', `/admin/api/people?q=${encodeURIComponent(user.userName)}`);
    await admin('/admin/api/people', '/admin/api/people');
    const group = (
      await h.http.post('/scim/v2/Groups').send({ schemas: [GROUP], displayName: 'Console lookup' })
    ).body;
    const found = await admin(
      '/admin/api/people',
      `/admin/api/people?q=${encodeURIComponent(group.displayName)}`,
    );
    expect(found.body.group.id).toBe(group.id);
    await admin('/admin/api/reconciler', '/admin/api/reconciler');
    // After a run the leader's published status is part of the report too.
    await h.reconciler.runOnce();
    const report = await admin('/admin/api/reconciler', '/admin/api/reconciler');
    expect(report.body.leaderStatus).not.toBeNull();
    await admin('/admin/api/reconciler', '/admin/api/reconciler', TEST_TOKEN);
    await admin('/admin/api/unmanaged', '/admin/api/unmanaged?limit=5');
    await admin('/admin/api/unmanaged', '/admin/api/unmanaged?limit=0');
    const run = (token = ADMIN_TOKEN) =>
      call(
        'post',
        '/admin/api/reconciler/run',
        h.http.post('/admin/api/reconciler/run').set('Authorization', `Bearer ${token}`),
      );
    expect((await run()).status).toBe(200);
    expect((await run()).status).toBe(429);
    await run(TEST_TOKEN);
    await admin('/admin/api/unmanaged', '/admin/api/unmanaged');
  });

  let seenRoutes = '';
  it('covered every operation, each with a success and an error (where the operation has both)', async () => {
    seenRoutes = (await h.metrics!.render()).body;
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const method of METHODS) {
        const op = item[method] as Json | undefined;
        if (!op) continue;
        const statuses = seen.get(`${method} ${path}`);
        expect(statuses, `${method.toUpperCase()} ${path} was exercised`).toBeDefined();
        const declared = Object.keys(op.responses as Json).map(Number);
        if (declared.some((s) => s < 300) && !NOT_SERVED_YET.has(`${method} ${path}`))
          expect(
            [...statuses!].some((s) => s < 300),
            `${method} ${path} success`,
          ).toBe(true);
        if (declared.some((s) => s >= 400))
          expect(
            [...statuses!].some((s) => s >= 400),
            `${method} ${path} error`,
          ).toBe(true);
      }
    }
    // Every route template the app actually served is described (":id" in Express, "{id}" here).
    const served = new Set(
      [...(seenRoutes.matchAll(/route="([^"]+)"/g) ?? [])].map((m) => m[1].replace(/:(\w+)/g, '{$1}')),
    );
    served.delete('unmatched');
    expect(served.size).toBeGreaterThan(10);
    for (const route of served) expect(Object.keys(spec.paths), route).toContain(route);
    // The error paths that need special set-up really happened.
    const got = (key: string) => [...(seen.get(key) ?? [])];
    expect(got('post /scim/v2/Users')).toEqual(expect.arrayContaining([201, 400, 401, 403, 409, 413, 415]));
    expect(got('get /scim/v2/Users')).toEqual(expect.arrayContaining([200, 400, 401, 429, 503]));
    expect(got('get /scim/v2/Users/{id}')).toEqual(expect.arrayContaining([200, 404, 502, 504]));
    expect(got('put /scim/v2/Users/{id}')).toContain(412);
    expect(got('patch /scim/v2/Groups/{id}')).toEqual(expect.arrayContaining([200, 204]));
    expect(got('get /readyz')).toEqual(expect.arrayContaining([200, 503]));
  });
});
