import type { ListGroupsResult } from '../../volcengine/types.js';
import { businessErrors } from '../errors.js';
import { type GroupRecord, nameKey } from '../state.js';
import type { ActionContext, ActionDef } from './context.js';
import { checkSensitiveWords, optionalEnum, optionalString, readPage, requiredString } from './params.js';
import { groupToWire, pageOf } from './wire.js';

export const GROUP_LIMITS = { GroupName: 63, DisplayName: 64, Description: 128 } as const;
const JOIN_TYPES = ['Manual', 'Auto'] as const;

export function findGroup(ctx: ActionContext): GroupRecord {
  const groupId = requiredString(ctx.params, 'GroupId');
  const group = ctx.state.groups.get(groupId);
  if (!group) throw businessErrors.userGroupNotFound();
  return group;
}

function createGroup(ctx: ActionContext): object {
  const p = ctx.params;
  const groupName = requiredString(p, 'GroupName', GROUP_LIMITS.GroupName);
  const joinType = optionalEnum(p, 'JoinType', JOIN_TYPES);
  if (!joinType) throw businessErrors.paramMissing('JoinType');
  const displayName = optionalString(p, 'DisplayName', GROUP_LIMITS.DisplayName);
  const description = optionalString(p, 'Description', GROUP_LIMITS.Description);
  checkSensitiveWords(ctx.sensitiveWords, {
    GroupName: groupName,
    DisplayName: displayName,
    Description: description,
  });
  if (ctx.state.groupsByName.has(nameKey(groupName))) throw businessErrors.groupNameAlreadyExists();
  const group = ctx.state.createGroup(
    {
      GroupName: groupName,
      JoinType: joinType,
      ...(displayName !== undefined ? { DisplayName: displayName } : {}),
      ...(description !== undefined ? { Description: description } : {}),
    },
    ctx.now,
  );
  return groupToWire(group);
}

function getGroup(ctx: ActionContext): object {
  return groupToWire(findGroup(ctx));
}

function listGroups(ctx: ActionContext): ListGroupsResult {
  const page = readPage(ctx.params);
  const query = optionalString(ctx.params, 'QueryString')?.toLowerCase();
  const joinType = optionalEnum(ctx.params, 'JoinType', JOIN_TYPES);
  const match =
    query || joinType
      ? (g: GroupRecord) =>
          (!query || g.nameKey.includes(query) || g.displayKey.includes(query)) &&
          (!joinType || g.JoinType === joinType)
      : undefined;
  const { total, items } = pageOf(ctx.state.groups, page, match);
  return {
    PageNumber: page.pageNumber,
    PageSize: page.pageSize,
    Total: total,
    Groups: items.map(groupToWire),
  };
}

function updateGroup(ctx: ActionContext): object {
  // GroupName and JoinType are immutable upstream; like other unknown parameters they are ignored.
  const displayName = optionalString(ctx.params, 'DisplayName', GROUP_LIMITS.DisplayName);
  const description = optionalString(ctx.params, 'Description', GROUP_LIMITS.Description);
  checkSensitiveWords(ctx.sensitiveWords, { DisplayName: displayName, Description: description });
  const group = findGroup(ctx);
  ctx.state.updateGroup(
    group,
    {
      ...(displayName !== undefined ? { DisplayName: displayName } : {}),
      ...(description !== undefined ? { Description: description } : {}),
    },
    ctx.now,
  );
  return {};
}

function deleteGroup(ctx: ActionContext): object {
  const group = findGroup(ctx);
  // Callers must empty the group first (UserGroupDeletionConflict is documented on DeleteGroup).
  if (group.members.size > 0) throw businessErrors.userGroupDeletionConflict();
  ctx.state.deleteGroup(group);
  return {};
}

export const groupActions: ActionDef[] = [
  { name: 'CreateGroup', readOnly: false, run: createGroup },
  { name: 'GetGroup', readOnly: true, run: getGroup },
  { name: 'ListGroups', readOnly: true, run: listGroups },
  { name: 'UpdateGroup', readOnly: false, run: updateGroup },
  { name: 'DeleteGroup', readOnly: false, run: deleteGroup },
];
