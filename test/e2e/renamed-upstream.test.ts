// A user renamed in the CloudIdentity console (`ren1` → `ren1-renamed`) while the IdP still
// provisions it as `ren1`. Entra and Okta match by `userName eq "ren1"` and create when nothing
// matches: the filter must find the person by the store's record (a create would be 409, and the
// IdP would loop), and the drift pass must report the rename.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness, storeKinds } from '../helpers/harness.js';
import { createUser, expectInvariants } from './consistency-support.js';
import { filterUrl, patchBody, uniqueName, userBody } from './users-support.js';

const kinds = await storeKinds();

describe.each(kinds)('a user renamed in the console (%s store)', (store) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ store });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("the IdP's match by the old userName finds the person, and drift reports the rename", async () => {
    const userName = uniqueName('ren1');
    const renamed = `renamed-${userName}`;
    const id = await createUser(h, userName);
    const record = await h.store.getUser(id);
    await h.client.updateUser({ UserId: record!.upstreamUserId!, UserName: renamed });

    // Match (Entra, Okta): by the name the IdP knows.
    const byOld = await h.http.get(filterUrl(`userName eq "${userName}"`));
    expect(byOld.status, byOld.text).toBe(200);
    expect(byOld.body.totalResults, byOld.text).toBe(1);
    expect(byOld.body.Resources[0].id).toBe(id);
    // Reads show what CloudIdentity holds; the new name finds the same one resource.
    expect(byOld.body.Resources[0].userName).toBe(renamed);
    const byNew = await h.http.get(filterUrl(`userName eq "${renamed}"`));
    expect(byNew.body.totalResults, byNew.text).toBe(1);
    expect(byNew.body.Resources[0].id).toBe(id);
    // So the IdP does not create; if it did, the answer names the existing user (no second account).
    const again = await h.http.post('/scim/v2/Users').send(userBody(userName));
    expect(again.status).toBe(409);
    expect((await h.upstream()).users.filter((u) => u.UserId === record!.upstreamUserId)).toHaveLength(1);
    await expectInvariants(h, [{ id, userName: renamed }]);

    const run = await h.reconciler.runOnce({ drift: true });
    expect(run.drift).toEqual([
      expect.objectContaining({ kind: 'userRenamedUpstream', resource: `user:${id}`, action: 'reported' }),
    ]);
    // The detail names the account, never the user's names (logs carry no PII by default).
    expect(run.drift[0].detail).toContain(record!.upstreamUserId!);
    expect(run.drift[0].detail).not.toContain(userName);

    // The IdP, having matched, goes on updating the person.
    const update = await h.http
      .patch(`/scim/v2/Users/${id}`)
      .send(patchBody({ op: 'replace', path: 'title', value: 'Engineer' }));
    expect(update.status, update.text).toBe(200);
  });
});
