// One CloudIdentity user or group read by id, where "does not exist" is an answer (null) rather
// than an error: every read, write and repair that must know whether an account or group is still
// there asks through these.
import { ErrorCode as UpstreamCode } from '../volcengine/errors.js';
import type { CloudIdentityApi, CloudIdentityGroup, CloudIdentityUser } from '../volcengine/types.js';
import { callOptions, type RequestContext } from './context.js';
import { isCode } from './shared.js';

/** GetUser; null when CloudIdentity has no user of this UserId. */
export async function getUpstreamUser(
  api: CloudIdentityApi,
  userId: string,
  ctx: RequestContext,
): Promise<CloudIdentityUser | null> {
  try {
    return await api.getUser({ UserId: userId }, callOptions(ctx));
  } catch (e) {
    if (isCode(e, UpstreamCode.UserNotFound)) return null;
    throw e;
  }
}

/** GetGroup; null when CloudIdentity has no group of this GroupId. */
export async function getUpstreamGroup(
  api: CloudIdentityApi,
  groupId: string,
  ctx: RequestContext,
): Promise<CloudIdentityGroup | null> {
  try {
    return await api.getGroup({ GroupId: groupId }, callOptions(ctx));
  } catch (e) {
    if (isCode(e, UpstreamCode.UserGroupNotFound)) return null;
    throw e;
  }
}
