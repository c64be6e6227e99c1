import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getUpstreamGroup, getUpstreamUser } from '../../src/directory/upstream.js';
import { startUpstream, testContext, type Upstream } from '../helpers/domain.js';

let upstream: Upstream;
beforeAll(async () => {
  upstream = await startUpstream();
});
afterAll(() => upstream.close());

describe('getUpstreamUser and getUpstreamGroup', () => {
  it('return what CloudIdentity holds, null once it is deleted, and throw any other failure', async () => {
    const { ctx } = testContext();
    const opts = { deadlineAt: ctx.deadlineAt };
    const user = await upstream.api.createUser(
      { UserName: 'upstream-read@example.com', DisplayName: 'Read' },
      opts,
    );
    const group = await upstream.api.createGroup({ GroupName: 'upstream-read', JoinType: 'Manual' }, opts);
    expect(await getUpstreamUser(upstream.api, user.UserId, ctx)).toMatchObject({
      UserId: user.UserId,
      UserName: 'upstream-read@example.com',
      DisplayName: 'Read',
    });
    expect(await getUpstreamGroup(upstream.api, group.GroupId, ctx)).toMatchObject({
      GroupId: group.GroupId,
      GroupName: 'upstream-read',
    });

    // A refusal is not "does not exist": treating it as null would make a read answer 404.
    upstream.emulator.setFaults([{ action: '*', probability: 1, fault: 'AccessDenied' }]);
    await expect(getUpstreamUser(upstream.api, user.UserId, ctx)).rejects.toMatchObject({
      code: 'AccessDenied',
    });
    await expect(getUpstreamGroup(upstream.api, group.GroupId, ctx)).rejects.toMatchObject({
      code: 'AccessDenied',
    });
    upstream.emulator.setFaults([]);

    await upstream.api.deleteUser({ UserId: user.UserId }, opts);
    await upstream.api.deleteGroup({ GroupId: group.GroupId }, opts);
    expect(await getUpstreamUser(upstream.api, user.UserId, ctx)).toBeNull();
    expect(await getUpstreamGroup(upstream.api, group.GroupId, ctx)).toBeNull();
    expect(await getUpstreamUser(upstream.api, 'no-such-id', ctx)).toBeNull();
    expect(await getUpstreamGroup(upstream.api, 'no-such-id', ctx)).toBeNull();
  });
});
