// The single-write methods of BridgeStore, each a unit of work of its own through commit(): both
// stores get the same commit-error guarantee for them as for a whole unit, from one definition.
import type { AuditEntry } from './audit-types.js';
import {
  type CommitResult,
  type GroupChanges,
  type GroupRecord,
  type IntentRecord,
  type NewGroupRecord,
  type NewIntentRecord,
  type NewUserRecord,
  StoreStaleError,
  type StoreWrite,
  type UserChanges,
  type UserRecord,
} from './types.js';

export abstract class SingleWrites {
  abstract commit(writes: readonly StoreWrite[]): Promise<CommitResult>;

  async insertUser(record: NewUserRecord): Promise<UserRecord> {
    const result = await this.commit([{ op: 'insertUser', record }]);
    return result.users.get(record.scimId) as UserRecord;
  }

  async updateUser(
    scimId: string,
    changes: UserChanges,
    expectedVersion?: number,
  ): Promise<UserRecord | null> {
    try {
      const result = await this.commit([{ op: 'updateUser', scimId, changes, expectedVersion }]);
      return result.users.get(scimId) as UserRecord;
    } catch (err) {
      if (err instanceof StoreStaleError) return null;
      throw err;
    }
  }

  async deleteUser(scimId: string): Promise<boolean> {
    const result = await this.commit([{ op: 'deleteUser', scimId }]);
    return result.users.get(scimId) === 'deleted';
  }

  async insertGroup(record: NewGroupRecord): Promise<GroupRecord> {
    const result = await this.commit([{ op: 'insertGroup', record }]);
    return result.groups.get(record.scimId) as GroupRecord;
  }

  async updateGroup(
    scimId: string,
    changes: GroupChanges,
    expectedVersion?: number,
  ): Promise<GroupRecord | null> {
    try {
      const result = await this.commit([{ op: 'updateGroup', scimId, changes, expectedVersion }]);
      return result.groups.get(scimId) as GroupRecord;
    } catch (err) {
      if (err instanceof StoreStaleError) return null;
      throw err;
    }
  }

  async deleteGroup(scimId: string): Promise<boolean> {
    const result = await this.commit([{ op: 'deleteGroup', scimId }]);
    return result.groups.get(scimId) === 'deleted';
  }

  async addMembership(groupScimId: string, userScimId: string): Promise<void> {
    await this.commit([{ op: 'addMembership', groupScimId, userScimId }]);
  }

  async removeMembership(groupScimId: string, userScimId: string): Promise<void> {
    await this.commit([{ op: 'removeMembership', groupScimId, userScimId }]);
  }

  async putIntent(intent: NewIntentRecord): Promise<IntentRecord> {
    const result = await this.commit([{ op: 'putIntent', intent }]);
    return result.intents.get(intent.id) as IntentRecord;
  }

  async clearIntent(id: string): Promise<void> {
    await this.commit([{ op: 'clearIntent', id }]);
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    await this.commit([{ op: 'appendAudit', entry }]);
  }
}
