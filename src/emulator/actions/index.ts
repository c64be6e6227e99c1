import type { ActionDef } from './context.js';
import { groupActions } from './groups.js';
import { memberActions } from './members.js';
import { userActions } from './users.js';

export type { ActionDef } from './context.js';

/** The 13 emulated actions, by name. Other CloudIdentity actions answer InvalidActionOrVersion. */
export const ACTIONS: ReadonlyMap<string, ActionDef> = new Map(
  [...userActions, ...groupActions, ...memberActions].map((a) => [a.name, a]),
);

export const ACTION_NAMES: readonly string[] = [...ACTIONS.keys()];
