// The methods of BridgeStore both stores define the same way on top of their primitives: the
// single-write methods, each a unit of work of its own through commit() (both stores get the same
// commit-error guarantee for them as for a whole unit), and the drift snapshot (drift-sql.ts) through
// read() and writeAll().
import type { AuditEntry } from './audit-types.js';
import {
  driftProgressStatements,
  type ReadSql,
  readDriftFindings,
  readDriftSweep,
  readUnmanaged,
  replaceFindingsStatements,
  type Statement,
} from './drift-sql.js';
import type { DriftProgress, DriftReportedFinding } from './drift-types.js';
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
  /** Runs a read statement (drift snapshot). */
  protected abstract readonly read: ReadSql;
  /** Runs statements in one transaction (drift snapshot). */
  protected abstract writeAll(statements: Statement[]): Promise<void>;

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

  // ---- drift snapshot (drift-sql.ts) ----

  driftSweep() {
    return readDriftSweep(this.read);
  }

  saveDriftProgress(progress: DriftProgress): Promise<void> {
    return this.writeAll(driftProgressStatements(progress));
  }

  replaceDriftFindings(checked: string[], findings: DriftReportedFinding[]): Promise<void> {
    return this.writeAll(replaceFindingsStatements(checked, findings));
  }

  unmanagedAccounts(query: { offset: number; limit: number; q?: string }) {
    return readUnmanaged(this.read, query);
  }

  driftFindings(limit: number) {
    return readDriftFindings(this.read, limit);
  }
}
