// The bridge over a full embedded store (PRAGMA max_page_count on the store it runs): a PATCH whose
// commit cannot be written answers 503 with Retry-After and a SCIM error body, never 2xx, and the
// user reads back as it was acknowledged before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteStore } from '../../src/store/sqlite-store.js';
import { type Harness, startHarness } from '../helpers/harness.js';

const SCIM_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

describe('a bridge whose embedded store is full', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { READINESS_CACHE_MS: '0', LOG_LEVEL: 'info' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('answers a PATCH it cannot commit with 503 + Retry-After, and keeps the acknowledged state', async () => {
    const created = await h.http.post('/scim/v2/Users').send({ userName: 'full@example.com', title: 'Old' });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect((await h.http.get('/readyz')).status).toBe(200);

    const db = (h.store as SqliteStore).db;
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    const patched = await h.http.patch(`/scim/v2/Users/${id}`).send({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', path: 'title', value: 't'.repeat(20_000) }],
    });
    expect(patched.status).toBe(503);
    expect(patched.headers['retry-after']).toMatch(/^\d+$/);
    expect(patched.body.schemas).toEqual([SCIM_ERROR]);
    // A database at its page limit still takes small writes (this request's audit record is one), so
    // readiness rightly stays ready here; a full filesystem, where no write commits, turns it 503
    // (write-failure.test.ts).
    db.pragma('max_page_count = 1073741823');
    const read = await h.http.get(`/scim/v2/Users/${id}`);
    expect(read.status).toBe(200);
    expect(read.body.title).toBe('Old');
  });
});
