import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';

const SEARCH = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';

// POST /.search at the root (RFC 7644 §3.4.3): users and groups as one list.
describe('POST /scim/v2/.search', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    for (const name of ['root.a', 'root.b']) {
      expect((await h.http.post('/scim/v2/Users').send({ userName: name })).status).toBe(201);
    }
    expect((await h.http.post('/scim/v2/Groups').send({ displayName: 'Root Group' })).status).toBe(201);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('lists users then groups, paged across both', async () => {
    const all = await h.http.post('/scim/v2/.search').send({ schemas: [SEARCH], startIndex: 1, count: 10 });
    expect(all.status).toBe(200);
    expect(all.headers['content-type']).toMatch(/^application\/scim\+json/);
    expect(all.body.totalResults).toBe(3);
    expect(all.body.Resources.map((r: { meta: { resourceType: string } }) => r.meta.resourceType)).toEqual([
      'User',
      'User',
      'Group',
    ]);
    const second = await h.http.post('/scim/v2/.search').send({ schemas: [SEARCH], startIndex: 2, count: 2 });
    expect(second.body.totalResults).toBe(3);
    expect(second.body.startIndex).toBe(2);
    expect(second.body.Resources.map((r: { meta: { resourceType: string } }) => r.meta.resourceType)).toEqual(
      ['User', 'Group'],
    );
  });

  it('applies a filter to each type; an attribute one type lacks matches none of it', async () => {
    const users = await h.http
      .post('/scim/v2/.search')
      .send({ schemas: [SEARCH], filter: 'userName eq "ROOT.B"' });
    expect(users.body.totalResults).toBe(1);
    expect(users.body.Resources[0].userName).toBe('root.b');
    const groups = await h.http
      .post('/scim/v2/.search')
      .send({ schemas: [SEARCH], filter: 'displayName eq "root group"', excludedAttributes: ['members'] });
    expect(groups.body.Resources.map((r: { displayName: string }) => r.displayName)).toEqual(['Root Group']);
    const bad = await h.http.post('/scim/v2/.search').send({ schemas: [SEARCH], filter: 'userName zz "x"' });
    expect(bad.status).toBe(400);
    expect(bad.body.scimType).toBe('invalidFilter');
  });
});
