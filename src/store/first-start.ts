// A store's first start: a new, empty store facing a CloudIdentity that already holds users or
// groups is what a lost or wiped store looks like, and serving it would answer 404 to every SCIM id
// the identity provider holds. Such a start is refused until --accept-empty-store. Checked until a
// start passes (store_meta 'first_start'), so a refused start stays refused on the next attempt.
import type { Logger } from 'pino';
import type { StoreMeta } from './binding.js';
import { StoreSetupError } from './errors.js';
import type { BridgeStore } from './types.js';

export const FIRST_START_KEY = 'first_start';

export interface UpstreamHoldings {
  users: number;
  groups: number;
}

export interface FirstStartOptions {
  /** Counts what CloudIdentity already holds (one page of ListUsers and ListGroups). */
  upstreamHoldings: () => Promise<UpstreamHoldings>;
  acceptEmptyStore?: boolean;
  logger?: Logger;
  setting: 'DATA_DIR' | 'DATABASE_URL';
  /** Names the store and the CloudIdentity for messages. */
  where: string;
  upstream: string;
}

export const EMPTY_STORE_COST =
  'the identity provider then finds none of the SCIM ids it holds (404) and re-creates or re-matches each user and ' +
  'group by name; users deactivated through the bridge are forgotten (their group memberships with them), and ' +
  'come back as new accounts if reactivated';

export async function checkFirstStart(
  store: BridgeStore & StoreMeta,
  opts: FirstStartOptions,
): Promise<void> {
  if ((await store.getMeta(FIRST_START_KEY)) !== null) return;
  const empty = (await store.countUsers({})) === 0 && (await store.groupIdsAfter('', 1)).length === 0;
  if (empty) {
    let held: UpstreamHoldings | undefined;
    try {
      held = await opts.upstreamHoldings();
    } catch (err) {
      if (!opts.acceptEmptyStore)
        throw new StoreSetupError(
          opts.setting,
          `the store in ${opts.where} is new and empty, and ${opts.upstream} could not be asked whether it already holds ` +
            `users (${err instanceof Error ? err.message : String(err)}); a new store starts only once that is known. ` +
            'Start again when CloudIdentity answers, or with --accept-empty-store',
          { cause: err },
        );
    }
    if (held && held.users + held.groups > 0) {
      const holds = `${held.users} user${held.users === 1 ? '' : 's'} and ${held.groups} group${held.groups === 1 ? '' : 's'}`;
      if (!opts.acceptEmptyStore)
        throw new StoreSetupError(
          opts.setting,
          `the store in ${opts.where} is new and empty, but ${opts.upstream} already holds ${holds}. ` +
            'If this bridge ran before, its store was lost or replaced: restore it from a backup (npm run store -- restore, ' +
            'or your PostgreSQL backup). To start with an empty store anyway (a first start against an account that already ' +
            `has users, or accepting the loss), start once with --accept-empty-store: ${EMPTY_STORE_COST}`,
        );
      opts.logger?.warn(
        { upstreamUsers: held.users, upstreamGroups: held.groups },
        `--accept-empty-store: starting an empty store against ${opts.upstream}, which already holds ${holds}; ${EMPTY_STORE_COST}`,
      );
    }
  }
  await store.insertMetaIfAbsent(FIRST_START_KEY, new Date().toISOString());
}
