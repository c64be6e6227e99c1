import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../helpers/harness.js';

const ADMIN = 'admin-token-0123456789abcdef';

describe('/admin/api authentication', () => {
  let on: Harness;
  let off: Harness;
  beforeAll(async () => {
    on = await startHarness({ env: { ADMIN_TOKENS: `other-admin-token-000000,${ADMIN}` } });
    off = await startHarness();
  });
  afterAll(async () => {
    await on?.close();
    await off?.close();
  });

  it('is off (404) without ADMIN_TOKENS, whatever the token', async () => {
    const res = await off.http.get('/admin/api/anything').set('Authorization', `Bearer ${ADMIN}`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('admin_disabled');
  });

  it('refuses a missing, a SCIM or a wrong token with 401 and never echoes it', async () => {
    // The harness agent sends the SCIM token by default: an IdP's token must not open the admin API.
    const scim = await on.http.get('/admin/api/anything');
    expect(scim.status).toBe(401);
    expect(scim.headers['www-authenticate']).toMatch(/^Bearer/);
    const wrong = await on.http
      .get('/admin/api/anything')
      .set('Authorization', 'Bearer wrong-token-wrong-token');
    expect(wrong.status).toBe(401);
    expect(JSON.stringify(wrong.body)).not.toContain('wrong-token');
  });

  it('accepts any configured admin token', async () => {
    const res = await on.http.get('/admin/api/nothing-here').set('Authorization', `Bearer ${ADMIN}`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  it('rejects admin tokens shorter than 16 characters at configuration time', async () => {
    await expect(startHarness({ env: { ADMIN_TOKENS: 'short' } })).rejects.toThrow(/ADMIN_TOKENS/);
  });
});
