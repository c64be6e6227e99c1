// One membership change upstream, with the truth settled when the answer was lost.
//
// AddUserToGroup / RemoveUserFromGroup can fail after CloudIdentity committed them (a connection
// reset after commit, a 5xx after an earlier attempt's lost answer). The membership mirror must
// then follow CloudIdentity, not the error: one ListGroupMembers read (QueryString = the user's
// name, so usually one page) says whether the user is a member, and the caller mirrors that.
import { ErrorCode as UpstreamCode } from '../volcengine/errors.js';
import type { CloudIdentityApi } from '../volcengine/types.js';
import { callOptions, type RequestContext } from './context.js';
import { UPSTREAM_PAGE } from './paging.js';
import { isCode, mayHaveCommitted } from './shared.js';

/** How many member pages a membership check reads at most (a fuzzy QueryString may match many). */
const CHECK_PAGES = 5;

export interface UpstreamMember {
  groupId: string;
  userId: string;
  /** Narrows the member listing; without it every page is read (up to CHECK_PAGES). */
  userName?: string;
}

/** Is the user a member of the group in CloudIdentity? undefined when the read could not tell. */
export async function isUpstreamMember(
  api: CloudIdentityApi,
  m: UpstreamMember,
  ctx: RequestContext,
): Promise<boolean | undefined> {
  try {
    for (let page = 1; page <= CHECK_PAGES; page++) {
      const r = await api.listGroupMembers(
        {
          GroupId: m.groupId,
          PageNumber: page,
          PageSize: UPSTREAM_PAGE,
          ...(m.userName ? { QueryString: m.userName } : {}),
        },
        callOptions(ctx),
      );
      if (r.Members.some((member) => member.UserId === m.userId)) return true;
      if (page * UPSTREAM_PAGE >= r.Total) return false;
    }
    return undefined;
  } catch (e) {
    if (isCode(e, UpstreamCode.UserGroupNotFound)) return false;
    return undefined;
  }
}

/**
 * AddUserToGroup. 'added' when the user is a member afterwards (already was, or the failed call
 * committed), 'groupGone' when the group no longer exists. Other failures are rethrown: the user is
 * then not a member, or nobody could tell (the caller leaves its intent where a retry finds it).
 */
export async function addUpstreamMember(
  api: CloudIdentityApi,
  m: UpstreamMember,
  ctx: RequestContext,
): Promise<'added' | 'groupGone'> {
  try {
    await api.addUserToGroup({ GroupId: m.groupId, UserId: m.userId }, callOptions(ctx));
    return 'added';
  } catch (e) {
    if (isCode(e, UpstreamCode.UserAlreadyInGroup)) return 'added';
    if (isCode(e, UpstreamCode.UserGroupNotFound)) return 'groupGone';
    if (mayHaveCommitted(e) && (await isUpstreamMember(api, m, ctx)) === true) {
      ctx.log.info({ groupId: m.groupId }, 'AddUserToGroup failed after it had committed: a member');
      return 'added';
    }
    throw e;
  }
}

/** RemoveUserFromGroup; "not a member", a user gone, or a failed call that committed count as done. */
export async function removeUpstreamMember(
  api: CloudIdentityApi,
  m: UpstreamMember,
  ctx: RequestContext,
): Promise<void> {
  try {
    await api.removeUserFromGroup({ GroupId: m.groupId, UserId: m.userId }, callOptions(ctx));
  } catch (e) {
    // Already not a member, or the user is gone (which took its memberships with it).
    if (isCode(e, UpstreamCode.UserNotInGroup) || isCode(e, UpstreamCode.UserNotFound)) return;
    if (mayHaveCommitted(e) && (await isUpstreamMember(api, m, ctx)) === false) {
      ctx.log.info({ groupId: m.groupId }, 'RemoveUserFromGroup failed after it had committed: removed');
      return;
    }
    throw e;
  }
}
