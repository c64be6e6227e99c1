// One unit of work per change (README "Consistency"): an operation collects its store writes and states what
// it changed, then ends in ONE store transaction holding its final state, the clearing of its intent
// and its audit record. The commit is awaited and its failure thrown: nothing is acknowledged that is
// not committed. The audit record is built here from what the operation said it did.

import { auditEntry } from '../audit/entry.js';
import type { AuditOutcome, AuditSubject } from '../audit/origin.js';
import type { AuditChanges, AuditMember } from '../store/audit-types.js';
import type { BridgeStore, CommitResult, StoreWrite, UserRecord } from '../store/types.js';
import { describeGroup, describeUser, type GroupState, type UserState } from './audit-changes.js';
import type { RequestContext } from './context.js';

export class UnitOfWork {
  private readonly writes: StoreWrite[] = [];
  readonly changes: AuditChanges = {};
  private readonly subjects = new Set<string>();
  private readonly notes: string[] = [];
  private readonly upstreamFrom: number;
  private done = false;
  private result: CommitResult | undefined;

  constructor(
    private readonly store: BridgeStore,
    private readonly ctx: RequestContext,
    /** The resource the record names; may be completed before the commit. */
    readonly subject: AuditSubject,
    /** The record's method when not the origin's (a settle). */
    private readonly method?: string,
    /**
     * Only the CloudIdentity calls made from now on (a settle inside a request, which records its
     * own); by default every call the origin made.
     */
    ownCallsOnly = false,
  ) {
    this.upstreamFrom = ownCallsOnly ? ctx.origin.upstreamCalls().length : 0;
    if (subject.id !== null && ctx.origin.subject === undefined) ctx.origin.subject = subject;
  }

  get committed(): boolean {
    return this.done;
  }

  /** What the commit wrote (once committed). */
  get written(): CommitResult | undefined {
    return this.result;
  }

  write(...writes: StoreWrite[]): this {
    this.writes.push(...writes);
    return this;
  }

  /** The user's state before and after this unit (null: did not exist / deleted). */
  user(before: UserState | null, after: UserState | null): this {
    Object.assign(this.changes, describeUser(before, after));
    return this;
  }

  group(before: GroupState | null, after: GroupState | null): this {
    Object.assign(this.changes, describeGroup(before, after));
    return this;
  }

  /** Members a group gained and lost; each one's history shows this record too. */
  members(added: readonly AuditMember[], removed: readonly AuditMember[]): this {
    if (added.length + removed.length === 0) return this;
    this.changes.members ??= { added: [], removed: [] };
    const m = this.changes.members;
    m.added.push(...added);
    m.removed.push(...removed);
    for (const a of [...added, ...removed]) this.subjects.add(a.id);
    return this;
  }

  /** Groups a user joined or left through this unit (e.g. restored on reactivation). */
  groups(added: readonly string[], removed: readonly string[]): this {
    if (added.length + removed.length === 0) return this;
    this.changes.groups ??= { added: [], removed: [] };
    const g = this.changes.groups;
    g.added.push(...added);
    g.removed.push(...removed);
    for (const id of [...added, ...removed]) this.subjects.add(id);
    return this;
  }

  note(text: string): this {
    this.notes.push(text);
    return this;
  }

  /** Commits the writes and the audit record in one transaction. Throws what the store throws. */
  async commit(outcome: AuditOutcome): Promise<CommitResult> {
    if (this.done) throw new Error('a unit of work commits once');
    this.ctx.fence?.();
    if (this.notes.length > 0) this.changes.note = this.notes.join('; ');
    const entry = auditEntry({
      origin: this.ctx.origin,
      subject: this.subject,
      outcome,
      changes: this.changes,
      method: this.method,
      upstreamFrom: this.upstreamFrom,
      subjects: [...this.subjects],
    });
    // In one transaction the order does not matter; the intent's clearing goes last all the same.
    const ordered = [
      ...this.writes.filter((w) => w.op !== 'clearIntent'),
      ...this.writes.filter((w) => w.op === 'clearIntent'),
      { op: 'appendAudit' as const, entry, replacesStart: this.ctx.origin.startRecorded === true },
    ];
    const result = await this.store.commit(ordered);
    this.done = true;
    this.result = result;
    if (outcome === 'started') this.ctx.origin.startRecorded = true;
    return result;
  }
}

/** Writes without a record of their own: progress of an operation whose intent and record name it. */
export function commitProgress(store: BridgeStore, writes: readonly StoreWrite[]): Promise<CommitResult> {
  return store.commit(writes);
}

/** The user a committed unit of work wrote (it is there unless the unit deleted it). */
export function committedUser(result: CommitResult, scimId: string): UserRecord {
  const user = result.users.get(scimId);
  if (!user || user === 'deleted') throw new Error(`the unit of work did not write user ${scimId}`);
  return user;
}
