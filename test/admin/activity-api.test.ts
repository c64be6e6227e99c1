// The console's activity through HTTP, on both stores: the chart's windows and buckets, failures
// split into refused (4xx: the client's request) and failed (5xx: upstream, credentials, store) in
// the chart, its totals, per actor and in the audit filter; bad dates answered with one JSON error
// naming the parameter; the CSV export of the filtered trail (quoting, formula injection, paging).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPORT_PAGE } from '../../src/admin/audit-routes.js';
import { ACTIVITY_WINDOWS } from '../../src/admin/console-data.js';
import { LATENCY_CLASS_MS } from '../../src/store/audit-sql.js';
import type { AuditEntry } from '../../src/store/audit-types.js';
import { userBody } from '../e2e/users-support.js';
import { auditRecordAt } from '../helpers/audit-rows.js';
import { type Harness, startHarness, storeKinds } from '../helpers/harness.js';

const ADMIN = 'admin-token-for-activity-0123456789';
const OKTA = 'okta-token-for-activity-0123456789';

const kinds = await storeKinds();

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** RFC 4180 parser (quoted fields, doubled quotes, CRLF inside quotes). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) throw new Error(`CSV does not end with CRLF: ${JSON.stringify(cell)}`);
  return rows;
}

interface Outcomes {
  ok: number;
  refused: number;
  failed: number;
}

describe.each(kinds)('console activity API (%s store)', (kind) => {
  let h: Harness;
  const admin = (path: string) => h.http.get(path).set('Authorization', `Bearer ${ADMIN}`);
  const now = Date.now();
  const ago = (ms: number) => new Date(now - ms).toISOString();

  beforeAll(async () => {
    h = await startHarness({
      store: kind,
      env: { SCIM_BEARER_TOKENS: `okta:${OKTA}`, ADMIN_TOKENS: ADMIN },
    });
    const records: AuditEntry[] = [
      // Ten minutes ago: a burst from okta (three writes, two refused), one failure of entra's.
      ...[1, 2, 3].map(() => auditRecordAt({ at: ago(10 * MINUTE) })),
      auditRecordAt({
        at: ago(10 * MINUTE),
        status: 409,
        scimType: 'uniqueness',
        detail: 'userName is already taken',
      }),
      auditRecordAt({ at: ago(10 * MINUTE), status: 400, scimType: 'invalidValue', detail: 'bad value' }),
      auditRecordAt({
        at: ago(10 * MINUTE),
        actor: 'entra',
        status: 502,
        detail: 'upstream failed',
        durationMs: 3_000,
      }),
      // Three hours ago, two days ago, eight days ago (outside every window).
      auditRecordAt({ at: ago(3 * HOUR), actor: 'entra' }),
      auditRecordAt({ at: ago(48 * HOUR), actor: 'reconciler', method: 'repair', status: 503 }),
      auditRecordAt({ at: ago(8 * 24 * HOUR), actor: 'reconciler', method: 'repair' }),
    ];
    for (const r of records) await h.store.appendAudit(r);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('answers each window with its buckets, aligned and complete, and refused apart from failed', async () => {
    const expected: Record<string, { totals: Outcomes; actors: Record<string, Outcomes> }> = {
      '1h': {
        totals: { ok: 3, refused: 2, failed: 1 },
        actors: { okta: { ok: 3, refused: 2, failed: 0 }, entra: { ok: 0, refused: 0, failed: 1 } },
      },
      '6h': {
        totals: { ok: 4, refused: 2, failed: 1 },
        actors: { okta: { ok: 3, refused: 2, failed: 0 }, entra: { ok: 1, refused: 0, failed: 1 } },
      },
      '24h': {
        totals: { ok: 4, refused: 2, failed: 1 },
        actors: { okta: { ok: 3, refused: 2, failed: 0 }, entra: { ok: 1, refused: 0, failed: 1 } },
      },
      '7d': {
        totals: { ok: 4, refused: 2, failed: 2 },
        actors: {
          okta: { ok: 3, refused: 2, failed: 0 },
          entra: { ok: 1, refused: 0, failed: 1 },
          reconciler: { ok: 0, refused: 0, failed: 1 },
        },
      },
    };
    for (const [window, want] of Object.entries(expected)) {
      const res = await admin(`/admin/api/activity?window=${window}`);
      expect(res.status, window).toBe(200);
      const a = res.body;
      const { seconds, bucketSeconds } = ACTIVITY_WINDOWS[window as keyof typeof ACTIVITY_WINDOWS];
      expect(a).toMatchObject({ window, bucketSeconds, totals: want.totals });
      // Every bucket, empty ones too, oldest first, each starting on a multiple of its size.
      expect(a.buckets).toHaveLength(seconds / bucketSeconds);
      const starts = a.buckets.map((b: { at: string }) => Date.parse(b.at));
      for (let i = 0; i < starts.length; i++) {
        expect(starts[i] % (bucketSeconds * 1000)).toBe(0);
        if (i > 0) expect(starts[i] - starts[i - 1]).toBe(bucketSeconds * 1000);
      }
      expect(Date.parse(a.from)).toBe(starts[0]);
      expect(Date.parse(a.to)).toBeLessThan(starts[starts.length - 1] + bucketSeconds * 1000);
      const summed = { ok: 0, refused: 0, failed: 0 };
      for (const b of a.buckets) for (const k of ['ok', 'refused', 'failed'] as const) summed[k] += b[k];
      expect(summed).toEqual(want.totals);
      expect(Object.fromEntries(a.actors.map((x: Outcomes & { actor: string }) => [x.actor, x]))).toEqual(
        Object.fromEntries(Object.entries(want.actors).map(([actor, o]) => [actor, { actor, ...o }])),
      );
      // Busiest actor first.
      expect(a.actors[0].actor).toBe('okta');
      // The burst of ten minutes ago is one bucket holding all six operations.
      const burstAt = Math.floor((now - 10 * MINUTE) / (bucketSeconds * 1000)) * bucketSeconds * 1000;
      const burst = a.buckets.find((b: { at: string }) => Date.parse(b.at) === burstAt);
      if (window === '1h') {
        expect(burst).toMatchObject({ ok: 3, refused: 2, failed: 1 });
        // p95 of 20, 20, 20, 20, 20, 3000 ms: the 3000 ms one, as the upper bound of its class.
        const bound = LATENCY_CLASS_MS.find((ms) => ms > 3_000);
        expect(burst.p95Ms).toBe(bound);
      }
      expect(burst.ok + burst.refused + burst.failed).toBeGreaterThanOrEqual(6);
      // Empty buckets say so.
      expect(a.buckets.filter((b: { p95Ms: number | null }) => b.p95Ms === null).length).toBeGreaterThan(0);
    }
    // The default is the last 24 hours.
    expect((await admin('/admin/api/activity')).body.window).toBe('24h');
  });

  it('refuses an unknown window or parameter with one JSON error naming it', async () => {
    for (const [query, parameter] of [
      ['window=2d', 'window'],
      ['hours=24', 'hours'],
    ]) {
      const res = await admin(`/admin/api/activity?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body).toEqual({
        error: { code: 'invalid_parameter', message: expect.any(String), parameter },
      });
    }
  });

  it('filters the trail by refused, failed or either', async () => {
    const statuses = async (outcome: string) => {
      const res = await admin(`/admin/api/audit?outcome=${outcome}&limit=500`);
      expect(res.status).toBe(200);
      return res.body.records.map((r: { status: number }) => r.status).sort();
    };
    expect(await statuses('refused')).toEqual([400, 409]);
    expect(await statuses('failed')).toEqual([502, 503]);
    expect(await statuses('error')).toEqual([400, 409, 502, 503]);
    expect((await statuses('ok')).every((s: number) => s < 400)).toBe(true);
  });

  it('a refused SCIM request counts as refused, not failed', async () => {
    const userName = `activity.refused.${Date.now()}@example.com`;
    const scim = () =>
      h.http.post('/scim/v2/Users').set('Authorization', `Bearer ${OKTA}`).send(userBody(userName));
    expect((await scim()).status).toBe(201);
    expect((await scim()).status).toBe(409);
    const res = await admin(`/admin/api/audit?outcome=refused&resource=${encodeURIComponent(userName)}`);
    expect(res.body.records.map((r: { status: number }) => r.status)).toEqual([409]);
    expect(
      (await admin(`/admin/api/audit?outcome=failed&resource=${encodeURIComponent(userName)}`)).body.records,
    ).toEqual([]);
  });

  it('answers a bad date with one JSON error naming the parameter, on the log and on the exports', async () => {
    const cases: Array<[string, string]> = [
      ['since=yesterday', 'since'],
      ['since=2025-02-31', 'since'],
      ['until=2025-13-01T00:00Z', 'until'],
      ['since=2025-01-31T12:00', 'since'],
      ['since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z', 'until'],
    ];
    for (const path of ['/admin/api/audit', '/admin/api/audit.csv', '/admin/api/audit.jsonl'])
      for (const [query, parameter] of cases) {
        const res = await admin(`${path}?${query}`);
        expect(res.status, `${path}?${query}`).toBe(400);
        expect(res.headers['content-type']).toMatch(/^application\/json/);
        expect(res.body.error).toMatchObject({ code: 'invalid_parameter', parameter });
        expect(res.body.error.message).toContain(parameter);
      }
    // A date, and a time with an offset, are fine.
    expect((await admin('/admin/api/audit?since=2025-01-31')).status).toBe(200);
    expect((await admin('/admin/api/audit?since=2025-01-31T12:00%2B01:00')).status).toBe(200);
  });

  it('exports the filtered trail as CSV: quoted, formula-safe, an attachment, page after page', async () => {
    const tricky = [
      auditRecordAt({
        at: ago(5 * MINUTE),
        actor: 'csv',
        resourceName: '=HYPERLINK("http://evil.example","x")',
      }),
      auditRecordAt({
        at: ago(5 * MINUTE),
        actor: 'csv',
        resourceName: '+1 555',
        status: 409,
        detail: 'a, "b"\nc',
      }),
      auditRecordAt({
        at: ago(5 * MINUTE),
        actor: 'csv',
        resourceName: '-2',
        detail: '@SUM(A1)',
        status: 502,
      }),
      auditRecordAt({ at: ago(5 * MINUTE), actor: 'csv', resourceName: 'Zoë Ünicode', durationMs: 12.5 }),
      auditRecordAt({
        at: ago(5 * MINUTE),
        actor: 'csv',
        resourceName: 'plain',
        changes: { fields: { DisplayName: { from: 'Old', to: 'New' } } },
        upstream: [{ action: 'UpdateUser', requestId: 'REQ-1', outcome: 'ok' }],
      }),
    ];
    for (const r of tricky) await h.store.appendAudit(r);
    const res = await admin('/admin/api/audit.csv?actor=csv');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv; charset=utf-8/);
    expect(res.headers['content-disposition']).toBe('attachment; filename="audit.csv"');
    const text = res.text;
    expect(text.startsWith('\uFEFF')).toBe(true);
    const rows = parseCsv(text.slice(1));
    const header = rows[0];
    expect(header.slice(0, 5)).toEqual(['id', 'time', 'actor', 'outcome', 'status']);
    const col = (row: string[], name: string) => row[header.indexOf(name)];
    const body = rows.slice(1);
    expect(body).toHaveLength(5);
    for (const row of body) expect(row).toHaveLength(header.length);
    // Oldest first, as appended.
    expect(body.map((r) => col(r, 'resource_name'))).toEqual([
      `'=HYPERLINK("http://evil.example","x")`,
      "'+1 555",
      "'-2",
      'Zoë Ünicode',
      'plain',
    ]);
    expect(body.map((r) => col(r, 'outcome'))).toEqual(['ok', 'refused', 'failed', 'ok', 'ok']);
    expect(col(body[1], 'detail')).toBe('a, "b"\nc');
    expect(col(body[2], 'detail')).toBe("'@SUM(A1)");
    expect(col(body[3], 'duration_ms')).toBe('12.5');
    expect(JSON.parse(col(body[4], 'changes'))).toEqual({
      fields: { DisplayName: { from: 'Old', to: 'New' } },
    });
    expect(col(body[4], 'upstream_request_ids')).toBe('UpdateUser: REQ-1');
    // Raw text: the formula cell is quoted (it holds quotes and commas) and starts with the apostrophe.
    expect(text).toContain(`"'=HYPERLINK(""http://evil.example"",""x"")"`);

    // The same filters as the log.
    const refused = await admin('/admin/api/audit.csv?actor=csv&outcome=refused');
    expect(
      parseCsv(refused.text.slice(1))
        .slice(1)
        .map((r) => col(r, 'status')),
    ).toEqual(['409']);

    // More records than one export page: all of them, in order.
    const many = EXPORT_PAGE + 20;
    for (let i = 0; i < many; i++)
      await h.store.appendAudit(
        auditRecordAt({ at: ago(4 * MINUTE), actor: 'csv-many', resourceName: `user${i}` }),
      );
    const paged = await admin('/admin/api/audit.csv?actor=csv-many');
    const pagedRows = parseCsv(paged.text.slice(1)).slice(1);
    expect(pagedRows.map((r) => col(r, 'resource_name'))).toEqual(
      Array.from({ length: many }, (_, i) => `user${i}`),
    );

    // Authenticated like the rest of the admin API.
    const anonymous = await h.http.get('/admin/api/audit.csv');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('unauthorized');
  });
});
