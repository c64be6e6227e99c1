// The drift snapshot as the store holds it (both stores, migration 12): what the reconciler's drift
// pass found in CloudIdentity, kept in the store so that every replica serves the same data and it
// survives a restart. Written by the leader's drift pass (directory/unmanaged.ts), read by the admin
// API. Times are ISO-8601 UTC text.

/** A CloudIdentity account no SCIM resource in the store maps, as CloudIdentity listed it. */
export interface UnmanagedAccount {
  userId: string;
  userName: string;
  displayName: string | null;
  email: string | null;
  /** CloudIdentity's `Source` (`Manual`: created in its console or API; `Sync`: its own sync). */
  source: string | null;
  /** CloudIdentity's CreatedTime. */
  createdTime: string | null;
}

export interface UnmanagedMembership {
  userId: string;
  groupId: string;
  groupName: string;
}

/** Where the walk of CloudIdentity stands: ListUsers and ListGroups/ListGroupMembers page numbers. */
export interface DriftWalkCursor {
  /** Next ListUsers page (1-based); 0 once every user of this sweep was listed. */
  userPage: number;
  /** ListGroups page (1-based) of the group being walked; 0 once every group was walked. */
  groupPage: number;
  /** Index of the group in that page. */
  groupIndex: number;
  /** Next ListGroupMembers page of that group (1-based). */
  memberPage: number;
}

/**
 * A sweep is one walk over every CloudIdentity user and group, done a few pages per drift pass.
 * `completed` describes the last sweep that reached the end: only then is the list whole.
 */
export interface DriftSweepState {
  /** The sweep in progress (1, 2, …); rows carry the sweep that last saw them. */
  sweep: number;
  startedAt: string;
  cursor: DriftWalkCursor;
  /** Users listed so far in this sweep, and CloudIdentity's Total at the last ListUsers. */
  usersListed: number;
  upstreamUsers: number | null;
  groupsWalked: number;
  /** When the last pass that advanced the walk finished. */
  lastPassAt: string | null;
  completed: { sweep: number; startedAt: string; finishedAt: string } | null;
}

/** What one drift pass advanced: written in one transaction with the new state. */
export interface DriftProgress {
  /** The state after this pass. */
  state: DriftSweepState;
  /** The sweep this pass belonged to: the rows below are marked as seen in it. */
  seenSweep: number;
  /** Accounts listed in this pass that no SCIM resource maps. */
  accounts: UnmanagedAccount[];
  memberships: UnmanagedMembership[];
  /**
   * This pass ended sweep `seenSweep`: rows that sweep did not see (accounts deleted or adopted
   * since, memberships gone) are removed.
   */
  finished: boolean;
}

/** A finding the drift pass reports and only an operator can resolve (it repairs nothing). */
export interface DriftReportedFinding {
  kind: 'userRenamedUpstream' | 'tombstoneCollision';
  scimId: string;
  /** The SCIM user's userName (read from its record when listed). */
  userName?: string | null;
  upstreamUserId: string | null;
  /** The CloudIdentity account's UserName (the new name, or the one that collides). */
  upstreamUserName: string | null;
  detail: string;
  foundAt: string;
}

export interface UnmanagedPage {
  /** Accounts in the snapshot that the store does not map now (adoptions drop out at once). */
  total: number;
  accounts: Array<
    UnmanagedAccount & { seenAt: string; groups: Array<{ groupId: string; groupName: string }> }
  >;
}

export interface DriftSnapshotStore {
  driftSweep(): Promise<DriftSweepState | null>;
  saveDriftProgress(progress: DriftProgress): Promise<void>;
  /**
   * Replaces the reported findings of the SCIM users `checked` (one pass's users) with `findings`:
   * a user checked again and found in order loses its finding.
   */
  replaceDriftFindings(checked: string[], findings: DriftReportedFinding[]): Promise<void>;
  /** Unmanaged accounts by userName, `q` a case-insensitive substring of userName, name or e-mail. */
  unmanagedAccounts(query: { offset: number; limit: number; q?: string }): Promise<UnmanagedPage>;
  /** Reported findings of SCIM users that still exist, newest first, with their userName. */
  driftFindings(limit: number): Promise<{ total: number; findings: DriftReportedFinding[] }>;
}
