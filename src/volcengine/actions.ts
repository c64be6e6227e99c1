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

const nothing = (): void => undefined;

export const createUser = (input: CreateUserInput): CallPlan<CloudIdentityUser> => ({
  action: 'CreateUser',
  params: input,
  parse: (r) => shapeUser('CreateUser', r),
});

export const getUser = (input: { UserId: string }): CallPlan<CloudIdentityUser> => ({
  action: 'GetUser',
  params: input,
  parse: (r) => shapeUser('GetUser', r),
});

export const listUsers = (input: ListUsersInput): CallPlan<ListUsersResult> => ({
  action: 'ListUsers',
  params: input,
  parse: (r) => ({
    ...shapePage(r, input, 'Users'),
    Users: shapeList('ListUsers', r, 'Users', (u, where) => shapeUser('ListUsers', u, where)),
  }),
});

// Idempotent by nature: repeating an update that already landed changes nothing.
export const updateUser = (input: UpdateUserInput): CallPlan<void> => ({
  action: 'UpdateUser',
  params: input,
  parse: nothing,
});

export const deleteUser = (input: { UserId: string }): CallPlan<void> => ({
  action: 'DeleteUser',
  params: input,
  parse: nothing,
  doneIf: ErrorCode.UserNotFound,
});

export const createGroup = (input: CreateGroupInput): CallPlan<CloudIdentityGroup> => ({
  action: 'CreateGroup',
  params: input,
  parse: (r) => shapeGroup('CreateGroup', r),
});

export const getGroup = (input: { GroupId: string }): CallPlan<CloudIdentityGroup> => ({
  action: 'GetGroup',
  params: input,
  parse: (r) => shapeGroup('GetGroup', r),
});

export const listGroups = (input: ListGroupsInput): CallPlan<ListGroupsResult> => ({
  action: 'ListGroups',
  params: input,
  parse: (r) => ({
    ...shapePage(r, input, 'Groups'),
    Groups: shapeList('ListGroups', r, 'Groups', (g, where) => shapeGroup('ListGroups', g, where)),
  }),
});

export const updateGroup = (input: UpdateGroupInput): CallPlan<void> => ({
  action: 'UpdateGroup',
  params: input,
  parse: nothing,
});

export const deleteGroup = (input: { GroupId: string }): CallPlan<void> => ({
  action: 'DeleteGroup',
  params: input,
  parse: nothing,
  doneIf: ErrorCode.UserGroupNotFound,
});

export const addUserToGroup = (input: MembershipInput): CallPlan<void> => ({
  action: 'AddUserToGroup',
  params: input,
  parse: nothing,
  doneIf: ErrorCode.UserAlreadyInGroup,
});

export const removeUserFromGroup = (input: MembershipInput): CallPlan<void> => ({
  action: 'RemoveUserFromGroup',
  params: input,
  parse: nothing,
  doneIf: ErrorCode.UserNotInGroup,
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
