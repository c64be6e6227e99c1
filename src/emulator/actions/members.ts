import type { ListGroupMembersResult } from '../../volcengine/types.js';
import { businessErrors } from '../errors.js';
import type { MemberRecord, UserRecord } from '../state.js';
import type { ActionContext, ActionDef } from './context.js';
import { findGroup } from './groups.js';
import { optionalString, readPage, requiredString } from './params.js';
import { memberToWire, pageOf } from './wire.js';

// Parameter checks (ParamMissing) come first, then the group, then the user, then the membership.

function findUser(ctx: ActionContext): UserRecord {
  const user = ctx.state.users.get(requiredString(ctx.params, 'UserId'));
  if (!user) throw businessErrors.userNotFound();
  return user;
}

function requireBothIds(ctx: ActionContext): void {
  requiredString(ctx.params, 'GroupId');
  requiredString(ctx.params, 'UserId');
}

function addUserToGroup(ctx: ActionContext): object {
  requireBothIds(ctx);
  const group = findGroup(ctx);
  const user = findUser(ctx);
  if (group.members.has(user.UserId)) throw businessErrors.userAlreadyInGroup();
  ctx.state.addMember(group, user, ctx.now);
  return {};
}

function removeUserFromGroup(ctx: ActionContext): object {
  requireBothIds(ctx);
  const group = findGroup(ctx);
  const user = findUser(ctx);
  if (!group.members.has(user.UserId)) throw businessErrors.userNotInGroup();
  ctx.state.removeMember(group, user);
  return {};
}

function listGroupMembers(ctx: ActionContext): ListGroupMembersResult {
  requiredString(ctx.params, 'GroupId');
  const page = readPage(ctx.params);
  const query = optionalString(ctx.params, 'QueryString')?.toLowerCase();
  const group = findGroup(ctx);
  const match = query
    ? (m: MemberRecord) => m.user.nameKey.includes(query) || m.user.displayKey.includes(query)
    : undefined;
  const { total, items } = pageOf(group.members, page, match);
  return {
    PageNumber: page.pageNumber,
    PageSize: page.pageSize,
    Total: total,
    Members: items.map(memberToWire),
  };
}

export const memberActions: ActionDef[] = [
  { name: 'AddUserToGroup', readOnly: false, run: addUserToGroup },
  { name: 'RemoveUserFromGroup', readOnly: false, run: removeUserFromGroup },
  { name: 'ListGroupMembers', readOnly: true, run: listGroupMembers },
];
