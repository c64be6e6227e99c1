import type { ListUsersResult } from '../../volcengine/types.js';
import { businessErrors } from '../errors.js';
import { nameKey, type UserRecord } from '../state.js';
import type { ActionContext, ActionDef } from './context.js';
import { checkSensitiveWords, optionalEnum, optionalString, readPage, requiredString } from './params.js';
import { pageOf, userToWire } from './wire.js';

// Field limits from the reference §2/§3, counted in characters.
export const USER_LIMITS = {
  UserName: 54,
  DisplayName: 64,
  Description: 255,
  Email: 128,
  Phone: 20,
} as const;

function findUser(ctx: ActionContext): UserRecord {
  const userId = requiredString(ctx.params, 'UserId');
  const user = ctx.state.users.get(userId);
  if (!user) throw businessErrors.userNotFound();
  return user;
}

function readProfile(ctx: ActionContext) {
  const p = ctx.params;
  return {
    DisplayName: optionalString(p, 'DisplayName', USER_LIMITS.DisplayName),
    Description: optionalString(p, 'Description', USER_LIMITS.Description),
    Email: optionalString(p, 'Email', USER_LIMITS.Email),
    Phone: optionalString(p, 'Phone', USER_LIMITS.Phone),
  };
}

function createUser(ctx: ActionContext): object {
  // CreateUser's own error table has no ParamMissing: a missing or empty UserName is InvalidParam.
  const userName = optionalString(ctx.params, 'UserName', USER_LIMITS.UserName, 1);
  if (userName === undefined || userName === '') {
    throw businessErrors.invalidParam('UserName', userName ?? '');
  }
  const profile = readProfile(ctx);
  checkSensitiveWords(ctx.sensitiveWords, { UserName: userName, ...profile });
  if (ctx.state.usersByName.has(nameKey(userName))) throw businessErrors.userNameAlreadyExists();
  if (ctx.state.users.size >= ctx.userQuota) throw businessErrors.reachedQuotaLimit('user');
  const user = ctx.state.createUser({ UserName: userName, ...definedOnly(profile) }, ctx.now);
  return userToWire(user, false);
}

function getUser(ctx: ActionContext): object {
  return userToWire(findUser(ctx), true);
}

function listUsers(ctx: ActionContext): ListUsersResult {
  const page = readPage(ctx.params);
  const query = optionalString(ctx.params, 'QueryString')?.toLowerCase();
  const userName = optionalString(ctx.params, 'UserName');
  const source = optionalEnum(ctx.params, 'Source', ['Manual', 'Sync'] as const);

  const matchRest = (u: UserRecord) =>
    (!query || u.nameKey.includes(query) || u.displayKey.includes(query)) && (!source || u.Source === source);

  let total: number;
  let items: UserRecord[];
  if (userName) {
    // Exact, case-insensitive name match: an index lookup, whatever the directory size.
    const hit = ctx.state.usersByName.get(nameKey(userName));
    const matches = hit && matchRest(hit) ? [hit] : [];
    total = matches.length;
    items = matches.slice(page.offset, page.offset + page.pageSize);
  } else {
    ({ total, items } = pageOf(ctx.state.users, page, query || source ? matchRest : undefined));
  }
  return {
    PageNumber: page.pageNumber,
    PageSize: page.pageSize,
    Total: total,
    Users: items.map((u) => userToWire(u, true)),
  };
}

function updateUser(ctx: ActionContext): object {
  const userName = optionalString(ctx.params, 'UserName', USER_LIMITS.UserName);
  // A user cannot lose its name: unlike the other fields, '' does not clear it.
  if (userName === '') throw businessErrors.invalidParam('UserName', '');
  const profile = readProfile(ctx);
  checkSensitiveWords(ctx.sensitiveWords, { UserName: userName, ...profile });
  const user = findUser(ctx);
  if (userName !== undefined) {
    const holder = ctx.state.usersByName.get(nameKey(userName));
    if (holder && holder !== user) throw businessErrors.userNameAlreadyExists();
  }
  // Absent fields stay; '' clears.
  ctx.state.updateUser(user, definedOnly({ UserName: userName, ...profile }), ctx.now);
  return {};
}

function deleteUser(ctx: ActionContext): object {
  ctx.state.deleteUser(findUser(ctx));
  return {};
}

function definedOnly<T extends Record<string, string | undefined>>(o: T): Partial<Record<keyof T, string>> {
  const out: Partial<Record<keyof T, string>> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k as keyof T] = v;
  return out;
}

export const userActions: ActionDef[] = [
  { name: 'CreateUser', readOnly: false, run: createUser },
  { name: 'GetUser', readOnly: true, run: getUser },
  { name: 'ListUsers', readOnly: true, run: listUsers },
  { name: 'UpdateUser', readOnly: false, run: updateUser },
  { name: 'DeleteUser', readOnly: false, run: deleteUser },
];
