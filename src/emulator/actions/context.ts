import type { EmulatorState } from '../state.js';
import type { Params } from './params.js';

export interface ActionContext {
  state: EmulatorState;
  params: Params;
  /** Request time in ms since the epoch (from the emulator's clock). */
  now: number;
  /** Maximum number of users (Infinity when unlimited). */
  userQuota: number;
  /** Lower-cased sensitive words. */
  sensitiveWords: readonly string[];
}

/** Returns the action's Result; throws ApiError for business errors. */
export type ActionHandler = (ctx: ActionContext) => object;

export interface ActionDef {
  name: string;
  /** Read actions may also be called as GET with query parameters (reference §1). */
  readOnly: boolean;
  run: ActionHandler;
}
