// The thirteen CloudIdentity actions the bridge calls, each as the plan of one call: its name, its
// parameters (sent as the JSON body), how its Result is checked and shaped, and for a mutation the
// error code that after a lost answer only means "already done".
import { ErrorCode } from './errors.js';
import { shapeGroup, shapeList, shapeMember, shapePage, shapeUser } from './results.js';
import type {
  CloudIdentityGroup,
  CloudIdentityUser,
  CreateGroupInput,
  CreateUserInput,
  ListGroupMembersInput,
  ListGroupMembersResult,
  ListGroupsInput,
  ListGroupsResult,
  ListUsersInput,
  ListUsersResult,
  MembershipInput,
  UpdateGroupInput,
  UpdateUserInput,
} from './types.js';

/** The actions that change CloudIdentity; every other action only reads. */
export const MUTATING_ACTIONS = [
  'CreateUser',
  'UpdateUser',
  'DeleteUser',
  'CreateGroup',
  'UpdateGroup',
  'DeleteGroup',
  'AddUserToGroup',
  'RemoveUserFromGroup',
] as const;

export type ActionName =
  | (typeof MUTATING_ACTIONS)[number]
  | 'GetUser'
  | 'ListUsers'
  | 'GetGroup'
  | 'ListGroups'
  | 'ListGroupMembers';

const MUTATIONS: ReadonlySet<string> = new Set(MUTATING_ACTIONS);

export function isMutation(action: ActionName): boolean {
  return MUTATIONS.has(action);
}

/** One call of an action. */
export interface CallPlan<T> {
  action: ActionName;
  params: object;
  /** Checks and shapes Result; throws a malformed error (never retried) if a required field is missing. */
  parse(result: Record<string, unknown>): T;
  /**
   * The error code that, after an earlier attempt may have committed, only says that attempt did the
   * work ("not found" after a delete, "already a member" after an add): the call then succeeds.
   */
  doneIf?: string;
}

/** A mutation without output; `doneIf` as in CallPlan. */
const change =
  <I extends object>(action: ActionName, doneIf?: string) =>
  (input: I): CallPlan<void> => ({ action, params: input, parse: () => undefined, doneIf });

/** A call answering one user or group. */
const single =
  <I extends object, T>(action: ActionName, shape: (action: string, r: Record<string, unknown>) => T) =>
  (input: I): CallPlan<T> => ({ action, params: input, parse: (r) => shape(action, r) });

export const createUser = single<CreateUserInput, CloudIdentityUser>('CreateUser', shapeUser);
export const getUser = single<{ UserId: string }, CloudIdentityUser>('GetUser', shapeUser);
// Idempotent by nature: repeating an update that already landed changes nothing.
export const updateUser = change<UpdateUserInput>('UpdateUser');
export const deleteUser = change<{ UserId: string }>('DeleteUser', ErrorCode.UserNotFound);

export const createGroup = single<CreateGroupInput, CloudIdentityGroup>('CreateGroup', shapeGroup);
export const getGroup = single<{ GroupId: string }, CloudIdentityGroup>('GetGroup', shapeGroup);
export const updateGroup = change<UpdateGroupInput>('UpdateGroup');
export const deleteGroup = change<{ GroupId: string }>('DeleteGroup', ErrorCode.UserGroupNotFound);

export const addUserToGroup = change<MembershipInput>('AddUserToGroup', ErrorCode.UserAlreadyInGroup);
export const removeUserFromGroup = change<MembershipInput>('RemoveUserFromGroup', ErrorCode.UserNotInGroup);

export const listUsers = (input: ListUsersInput): CallPlan<ListUsersResult> => ({
  action: 'ListUsers',
  params: input,
  parse: (r) => ({
    ...shapePage(r, input, 'Users'),
    Users: shapeList('ListUsers', r, 'Users', (u, where) => shapeUser('ListUsers', u, where)),
  }),
});

export const listGroups = (input: ListGroupsInput): CallPlan<ListGroupsResult> => ({
  action: 'ListGroups',
  params: input,
  parse: (r) => ({
    ...shapePage(r, input, 'Groups'),
    Groups: shapeList('ListGroups', r, 'Groups', (g, where) => shapeGroup('ListGroups', g, where)),
  }),
});

export const listGroupMembers = (input: ListGroupMembersInput): CallPlan<ListGroupMembersResult> => ({
  action: 'ListGroupMembers',
  params: input,
  parse: (r) => ({
    ...shapePage(r, input, 'Members'),
    Members: shapeList('ListGroupMembers', r, 'Members', (m, where) =>
      shapeMember('ListGroupMembers', m, where),
    ),
  }),
});
