// Issue 11, findings 4 and 7: the membership mirror (users' `groups`, the deactivation snapshot)
// follows CloudIdentity when a member change committed and then failed, and under concurrent
// add/remove of one user, on one bridge and on two bridges sharing one PostgreSQL schema.
import { afterEach, describe, expect, it } from 'vitest';
import { ApiGate, waitUntil } from '../helpers/api-gate.js';
import { storeKinds } from '../helpers/harness.js';
import {
  createGroup,
  createUser,
  expectInvariants,
  fire,
  memberPatch,
  queuedOn,
  setActive,
  startBridges,
  topologies,
} from './consistency-support.js';
import { uniqueName } from './users-support.js';

const kinds = await storeKinds();

describe.each(topologies(kinds))('consistency: group membership ($name)', (topology) => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it.skipIf(topology.twoBridges)(
    'finding 4: a member add (and remove) that committed and then lost its connection is mirrored; deactivate + reactivate keeps it',
    async () => {
      const { a: h, close: done } = await startBridges(topology);
      close = done;
      const userName = uniqueName('committed');
      const id = await createUser(h, userName);
      const groupId = await createGroup(h, uniqueName('committed-group', 'g'));

      h.emulator.setFaults([{ action: 'AddUserToGroup', probability: 1, fault: 'commitThenReset' }]);
      const added = await memberPatch(h, groupId, 'add', id);
      h.emulator.setFaults([]);
      expect(added.status, added.text).toBe(204);
      const read = await h.http.get(`/scim/v2/Users/${id}`);
      expect(read.body.groups.map((g: { value: string }) => g.value)).toEqual([groupId]);
      await expectInvariants(h, [{ id, userName }], [groupId]);

      expect((await setActive(h, id, false)).status).toBe(200);
      expect((await setActive(h, id, true)).status).toBe(200);
      await expectInvariants(h, [{ id, userName }], [groupId]);
      expect((await h.upstream()).memberships.filter((m) => m.GroupId === groupId)).toHaveLength(1);

      h.emulator.setFaults([{ action: 'RemoveUserFromGroup', probability: 1, fault: 'commitThenReset' }]);
      const removed = await memberPatch(h, groupId, 'remove', id);
      h.emulator.setFaults([]);
      expect(removed.status, removed.text).toBe(204);
      await expectInvariants(h, [{ id, userName }], [groupId]);
      expect((await h.upstream()).memberships.filter((m) => m.GroupId === groupId)).toEqual([]);
    },
  );

  it('finding 7: add and remove of one user at once leave the mirror equal to CloudIdentity; reactivation restores the right groups', async () => {
    const gate = new ApiGate();
    const bridges = await startBridges(topology, { wrapApi: (api) => gate.wrap(api) });
    close = bridges.close;
    const { a, b } = bridges;
    const userName = uniqueName('mirror');
    const id = await createUser(a, userName);
    const groupIds = [
      await createGroup(a, uniqueName('mirror-1', 'g')),
      await createGroup(a, uniqueName('mirror-2', 'g')),
    ];

    // Exact interleaving: the add committed upstream, its mirror row not yet written; the remove arrives.
    const held = gate.hold('addUserToGroup', 'after');
    const add = fire(memberPatch(a, groupIds[0], 'add', id));
    await held.reached;
    const remove = fire(memberPatch(b, groupIds[0], 'remove', id));
    let settled = false;
    void remove.finally(() => {
      settled = true;
    });
    await waitUntil(
      () => queuedOn(a, b, `group:${groupIds[0]}`, () => settled),
      'the remove waits for the add',
    );
    held.release();
    expect((await add).status).toBe(204);
    expect((await remove).status).toBe(204);
    await expectInvariants(a, [{ id, userName }], groupIds);
    expect((await a.upstream()).memberships).toEqual([]);

    // A burst: 24 adds and removes of the same user in two groups through both bridges.
    const burst = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        fire(memberPatch(i % 3 ? a : b, groupIds[i % 2], i % 4 < 2 ? 'add' : 'remove', id)),
      ),
    );
    expect(burst.map((r) => r.status)).toEqual(burst.map(() => 204));
    await expectInvariants(a, [{ id, userName }], groupIds);
    const upstreamBefore = (await a.upstream()).memberships.map((m) => m.GroupId).sort();

    // The deactivation snapshot is the mirror: reactivation restores exactly those groups.
    expect((await setActive(b, id, false)).status).toBe(200);
    expect((await setActive(a, id, true)).status).toBe(200);
    await expectInvariants(b, [{ id, userName }], groupIds);
    expect((await a.upstream()).memberships.map((m) => m.GroupId).sort()).toEqual(upstreamBefore);
    expect(a.locks.size + b.locks.size, 'no lock left behind').toBe(0);
  });
});
