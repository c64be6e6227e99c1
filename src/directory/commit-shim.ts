// TEMPORARY: stands in for BridgeStore.commit until the stores implement it (then this file goes).
// Applies the writes one by one, NOT in one transaction.
import {
  type BridgeStore,
  type CommitResult,
  type GroupRecord,
  type IntentRecord,
  StoreStaleError,
  type StoreWrite,
  type UserRecord,
} from '../store/types.js';

type WithCommit = BridgeStore & { commit?: (writes: readonly StoreWrite[]) => Promise<CommitResult> };

export async function storeCommit(store: BridgeStore, writes: readonly StoreWrite[]): Promise<CommitResult> {
  const own = (store as WithCommit).commit;
  if (own) return own.call(store, writes);
  const users = new Map<string, UserRecord | 'deleted'>();
  const groups = new Map<string, GroupRecord | 'deleted'>();
  const intents = new Map<string, IntentRecord>();
  for (const w of writes) {
    switch (w.op) {
      case 'insertUser':
        users.set(w.record.scimId, await store.insertUser(w.record));
        break;
      case 'updateUser': {
        const r = await store.updateUser(w.scimId, w.changes, w.expectedVersion);
        if (!r) throw new StoreStaleError(w.scimId);
        users.set(w.scimId, r);
        break;
      }
      case 'deleteUser':
        await store.deleteUser(w.scimId);
        users.set(w.scimId, 'deleted');
        break;
      case 'insertGroup':
        groups.set(w.record.scimId, await store.insertGroup(w.record));
        break;
      case 'updateGroup': {
        const r = await store.updateGroup(w.scimId, w.changes, w.expectedVersion);
        if (!r) throw new StoreStaleError(w.scimId);
        groups.set(w.scimId, r);
        break;
      }
      case 'deleteGroup':
        await store.deleteGroup(w.scimId);
        groups.set(w.scimId, 'deleted');
        break;
      case 'addMembership':
        await store.addMembership(w.groupScimId, w.userScimId);
        break;
      case 'removeMembership':
        await store.removeMembership(w.groupScimId, w.userScimId);
        break;
      case 'putIntent':
        intents.set(w.intent.id, await store.putIntent(w.intent));
        break;
      case 'clearIntent':
        await store.clearIntent(w.id);
        break;
      case 'appendAudit':
        await store.appendAudit(w.entry);
        break;
    }
  }
  return { users, groups, intents };
}
