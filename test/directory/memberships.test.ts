// One membership change upstream, and what the mirror must believe when its answer was lost:
// against the emulator over HTTP, with its injected faults.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  addUpstreamMember,
  isUpstreamMember,
  removeUpstreamMember,
} from '../../src/directory/memberships.js';
import type { FaultRule } from '../../src/emulator/index.js';
import { VolcengineApiError } from '../../src/volcengine/errors.js';
import { startUpstream, testContext, type Upstream } from '../helpers/domain.js';

let upstream: Upstream;
let n = 0;

beforeAll(async () => {
  upstream = await startUpstream();
});
afterEach(() => upstream.emulator.setFaults([]));
afterAll(() => upstream.close());

/** A user and a group in CloudIdentity, not yet related. */
async function pair() {
  const { ctx, logs } = testContext();
  const opts = { deadlineAt: ctx.deadlineAt };
  const user = await upstream.api.createUser({ UserName: `member-${++n}@example.com` }, opts);
  const group = await upstream.api.createGroup({ GroupName: `members-${n}`, JoinType: 'Manual' }, opts);
  return { ctx, logs, m: { groupId: group.GroupId, userId: user.UserId, userName: user.UserName } };
}

async function isMember(groupId: string, userId: string): Promise<boolean> {
  const res = await fetch(`${upstream.emulator.url}/_emulator/state`);
  const body = (await res.json()) as { memberships: Array<{ GroupId: string; UserId: string }> };
  return body.memberships.some((x) => x.GroupId === groupId && x.UserId === userId);
}

/** The call commits, its answer is lost, and every retry fails with a 5xx. */
const committedThenFailing = (action: string): FaultRule[] => [
  { action, probability: 1, fault: 'commitThenReset', times: 1 },
  { action, probability: 1, fault: 'InternalError' },
];

describe('addUpstreamMember', () => {
  it('adds; a user already a member counts as added', async () => {
    const { ctx, m } = await pair();
    expect(await addUpstreamMember(upstream.api, m, ctx)).toBe('added');
    expect(await isMember(m.groupId, m.userId)).toBe(true);
    expect(await addUpstreamMember(upstream.api, m, ctx)).toBe('added');
  });

  it('a group gone upstream is groupGone, not an error', async () => {
    const { ctx, m } = await pair();
    await upstream.api.deleteGroup({ GroupId: m.groupId }, { deadlineAt: ctx.deadlineAt });
    expect(await addUpstreamMember(upstream.api, m, ctx)).toBe('groupGone');
  });

  it('a failure after CloudIdentity committed the add is an add (the member list says so)', async () => {
    const { ctx, logs, m } = await pair();
    upstream.emulator.setFaults(committedThenFailing('AddUserToGroup'));
    expect(await addUpstreamMember(upstream.api, m, ctx)).toBe('added');
    expect(await isMember(m.groupId, m.userId)).toBe(true);
    expect(logs.map((l) => l.msg)).toContain('AddUserToGroup failed after it had committed: a member');
  });

  it('a failure that did not commit is thrown: the mirror must not claim the member', async () => {
    const { ctx, m } = await pair();
    upstream.emulator.setFaults([{ action: 'AddUserToGroup', probability: 1, fault: 'InternalError' }]);
    await expect(addUpstreamMember(upstream.api, m, ctx)).rejects.toBeInstanceOf(VolcengineApiError);
    expect(await isMember(m.groupId, m.userId)).toBe(false);
  });

  it('a user that does not exist is thrown (the caller names it as an unknown member)', async () => {
    const { ctx, m } = await pair();
    await expect(
      addUpstreamMember(upstream.api, { ...m, userId: 'no-such-user' }, ctx),
    ).rejects.toMatchObject({
      code: 'UserNotFound',
    });
  });
});

describe('removeUpstreamMember', () => {
  it('removes; not a member, or a user gone, counts as removed', async () => {
    const { ctx, m } = await pair();
    await addUpstreamMember(upstream.api, m, ctx);
    await removeUpstreamMember(upstream.api, m, ctx);
    expect(await isMember(m.groupId, m.userId)).toBe(false);
    await removeUpstreamMember(upstream.api, m, ctx);
    await upstream.api.deleteUser({ UserId: m.userId }, { deadlineAt: ctx.deadlineAt });
    await removeUpstreamMember(upstream.api, m, ctx);
  });

  it('a failure after CloudIdentity committed the removal is a removal', async () => {
    const { ctx, logs, m } = await pair();
    await addUpstreamMember(upstream.api, m, ctx);
    upstream.emulator.setFaults(committedThenFailing('RemoveUserFromGroup'));
    await removeUpstreamMember(upstream.api, m, ctx);
    expect(await isMember(m.groupId, m.userId)).toBe(false);
    expect(logs.map((l) => l.msg)).toContain('RemoveUserFromGroup failed after it had committed: removed');
  });

  it('a failure that did not commit is thrown: the user is still a member', async () => {
    const { ctx, m } = await pair();
    await addUpstreamMember(upstream.api, m, ctx);
    upstream.emulator.setFaults([{ action: 'RemoveUserFromGroup', probability: 1, fault: 'InternalError' }]);
    await expect(removeUpstreamMember(upstream.api, m, ctx)).rejects.toBeInstanceOf(VolcengineApiError);
    expect(await isMember(m.groupId, m.userId)).toBe(true);
  });
});

describe('isUpstreamMember', () => {
  it('true, false, false for a group gone, and undefined when CloudIdentity cannot be read', async () => {
    const { ctx, m } = await pair();
    expect(await isUpstreamMember(upstream.api, m, ctx)).toBe(false);
    await addUpstreamMember(upstream.api, m, ctx);
    expect(await isUpstreamMember(upstream.api, m, ctx)).toBe(true);
    // Without the name to narrow the listing, the member pages are read.
    expect(await isUpstreamMember(upstream.api, { groupId: m.groupId, userId: m.userId }, ctx)).toBe(true);
    upstream.emulator.setFaults([{ action: 'ListGroupMembers', probability: 1, fault: 'InternalError' }]);
    expect(await isUpstreamMember(upstream.api, m, ctx)).toBeUndefined();
    upstream.emulator.setFaults([]);
    await upstream.api.removeUserFromGroup(
      { GroupId: m.groupId, UserId: m.userId },
      { deadlineAt: ctx.deadlineAt },
    );
    await upstream.api.deleteGroup({ GroupId: m.groupId }, { deadlineAt: ctx.deadlineAt });
    expect(await isUpstreamMember(upstream.api, m, ctx)).toBe(false);
  });
});
