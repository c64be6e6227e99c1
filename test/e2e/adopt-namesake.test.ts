// Never adopt what you cannot prove is yours (DESIGN.md §8): a reactivation takes over an existing
// CloudIdentity account only when the bridge created it for that reactivation. A namesake made in the
// console while the user was deactivated is a 409 and a drift report, never a merge; an account the
// reactivation itself made (its CreateUser answer lost) is adopted.
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness, storeKinds } from '../helpers/harness.js';
import { createGroup, setActive } from './consistency-support.js';
import { uniqueName, userBody } from './users-support.js';

const kinds = await storeKinds();

describe.each(kinds)('reactivation and namesakes (%s store)', (store) => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("does not merge a reactivated user into a stranger's namesake account made in the console", async () => {
    h = await startHarness({ store, env: { DEACTIVATE_ACTION: 'delete' } });
    const userName = uniqueName('adopt1');
    const created = await h.http.post('/scim/v2/Users').send(
      userBody(userName, {
        displayName: 'Old Alice',
        emails: [{ value: 'alice@example.com', type: 'work', primary: true }],
      }),
    );
    expect(created.status, created.text).toBe(201);
    const id = created.body.id as string;
    const groupId = await createGroup(h, uniqueName('Finance-Admins', 'g'), [id]);
    expect((await setActive(h, id, false)).status).toBe(200);

    // Someone creates a new account with the same UserName in the console.
    const bob = await h.client.createUser({
      UserName: userName,
      DisplayName: 'New Hire Bob',
      Email: 'bob@example.com',
    });
    const first = await h.reconciler.runOnce({ drift: true });
    expect(first.drift.map((d) => d.kind)).toContain('tombstoneCollision');

    const on = await setActive(h, id, true);
    expect(on.status, on.text).toBe(409);
    expect(on.body.scimType).toBe('uniqueness');
    expect(on.body.detail).toContain(userName);
    expect(on.body.detail).toContain(bob.UserId);

    const upstream = await h.upstream();
    const account = upstream.users.find((u) => u.UserId === bob.UserId);
    expect(account).toMatchObject({ DisplayName: 'New Hire Bob', Email: 'bob@example.com' });
    expect(upstream.memberships.filter((m) => m.UserId === bob.UserId)).toEqual([]);
    expect(upstream.memberships.filter((m) => m.GroupId === groupId)).toEqual([]);
    expect(await h.store.countIntents()).toBe(0);

    const read = await h.http.get(`/scim/v2/Users/${id}`);
    expect(read.status).toBe(200);
    expect(read.body.active).toBe(false);
    expect(read.body.displayName).toBe('Old Alice');

    const again = await h.reconciler.runOnce({ drift: true });
    expect(again.drift.map((d) => d.kind)).toContain('tombstoneCollision');
  });

  it('adopts the account its own reactivation made when the CreateUser answer was lost', async () => {
    h = await startHarness({ store, env: { DEACTIVATE_ACTION: 'delete' } });
    const userName = uniqueName('adopt-own');
    const created = await h.http.post('/scim/v2/Users').send(userBody(userName));
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const groupId = await createGroup(h, uniqueName('own-g', 'g'), [id]);
    expect((await setActive(h, id, false)).status).toBe(200);
    // CreateUser commits, then the connection is cut every time: the answer never arrives.
    h.emulator.setFaults([{ action: 'CreateUser', probability: 1, fault: 'commitThenReset' }]);
    const on = await setActive(h, id, true);
    h.emulator.setFaults([]);
    expect(on.status, on.text).toBe(200);
    expect(on.body.active).toBe(true);
    const upstream = await h.upstream();
    const accounts = upstream.users.filter((u) => u.UserName.toLowerCase() === userName.toLowerCase());
    expect(accounts).toHaveLength(1);
    expect(upstream.memberships.filter((m) => m.GroupId === groupId)).toEqual([
      { GroupId: groupId, UserId: accounts[0].UserId },
    ]);
    expect((await h.store.getUser(id))?.upstreamUserId).toBe(accounts[0].UserId);
  });
});
