// The audit trail as the store holds it (both stores, same columns): one row per SCIM request that
// changed something or tried to, and per reconciler action. Written by src/audit/*, read by the
// admin API. Rows are append-only; only retention (pruneAudit) deletes them.

/** One upstream CloudIdentity call made while serving the request, with its RequestId. */
export interface AuditUpstreamCall {
  action: string;
  requestId?: string;
  /** 'ok' or the upstream error code / transport failure kind. */
  outcome: string;
}

export interface AuditFieldChange {
  from: string | boolean | null;
  to: string | boolean | null;
}

/** What a request changed: names only for SCIM attributes; old → new for the upstream fields. */
/** A member named by a membership record. */
export interface AuditMember {
  id: string;
  /** null when the bridge could not tell (a member removed after its account was gone). */
  userName: string | null;
}

export interface AuditChanges {
  /** SCIM attributes whose value changed (names only: values may be personal or secret). */
  attributes?: string[];
  /** CloudIdentity fields (UserName, DisplayName, Email, Phone, Description; GroupName/DisplayName) and `active`. */
  fields?: Record<string, AuditFieldChange>;
  /**
   * Group members added and removed: SCIM id and userName. Records written before names were kept
   * hold the SCIM id alone (a string); readers accept both.
   */
  members?: { added: Array<AuditMember | string>; removed: Array<AuditMember | string> };
  /** Groups (SCIM ids) a user joined or left through this request (e.g. restored on reactivation). */
  groups?: { added: string[]; removed: string[] };
  created?: boolean;
  deleted?: boolean;
  /** Free text for reconciler repairs ("re-added member", "removed orphan account"). */
  note?: string;
}

export interface AuditEntry {
  /** RFC 3339 UTC with milliseconds. */
  at: string;
  /** SCIM_BEARER_TOKENS label, `sha256:<12 hex>` for an unlabelled token, or `reconciler`. */
  actor: string;
  clientIp: string | null;
  requestId: string | null;
  /** HTTP method, or the reconciler's action kind. */
  method: string;
  resourceType: 'User' | 'Group' | null;
  resourceId: string | null;
  /** userName or group displayName. */
  resourceName: string | null;
  status: number;
  scimType: string | null;
  /** The SCIM error detail of a failure. */
  detail: string | null;
  durationMs: number;
  changes: AuditChanges;
  upstream: AuditUpstreamCall[];
  /**
   * Other resources this record concerns (e.g. the user SCIM ids a membership change added or
   * removed): a query by one of them (AuditQuery.resource) finds the record too, so a person's
   * history includes the group changes that affected them.
   */
  subjects?: string[];
}

export interface AuditRecord extends AuditEntry {
  /** Increasing with insertion; the paging cursor. */
  id: string;
}

export interface AuditQuery {
  /** A resource id, or a userName/displayName (case-insensitive). */
  resource?: string;
  actor?: string;
  /** Inclusive lower bound on `at` (RFC 3339). */
  since?: string;
  /** Exclusive upper bound on `at`. */
  until?: string;
  /** ok: status below 400; refused: 4xx (the client's request); failed: 5xx; error: either. */
  outcome?: 'ok' | 'error' | 'refused' | 'failed';
  /** Only records with an id below this one (the cursor of the previous page, newest first). */
  beforeId?: string;
  /** Only records with an id above this one (oldest-first paging, for exports). */
  afterId?: string;
  /** Default 'desc' (newest first). */
  order?: 'asc' | 'desc';
  limit: number;
}

/**
 * How an operation ended: ok (status below 400), refused (4xx: the client's request was wrong or
 * conflicts, e.g. a 409 uniqueness) or failed (5xx: upstream, credentials, the store).
 */
export type AuditOutcomeKind = 'ok' | 'refused' | 'failed';

/** One group of auditTally: how many records of one actor and outcome fell in one bucket and latency class. */
export interface AuditTallyRow {
  /** Start of the bucket, milliseconds since the epoch (a multiple of the bucket size). */
  bucket: number;
  actor: string;
  kind: AuditOutcomeKind;
  /** Index into LATENCY_CLASS_MS (audit-sql.ts); its length for durations past the last bound. */
  latencyClass: number;
  count: number;
}

export interface AuditActor {
  actor: string;
  lastAt: string;
  writes: number;
  errors: number;
}

export interface DirectoryCounts {
  users: number;
  deactivated: number;
  groups: number;
  memberships: number;
}

/** The audit part of a store (both SqliteStore and SqlStore). */
export interface AuditStore {
  appendAudit(entry: AuditEntry): Promise<void>;
  /** Newest first. */
  listAudit(query: AuditQuery): Promise<AuditRecord[]>;
  /**
   * Records with `since` <= at < `until` counted per bucket of `bucketSeconds` (aligned on the
   * epoch; a multiple of 60 that divides a day), actor, outcome and latency class: an aggregation
   * in SQL (GROUP BY), so the answer is bounded by the number of groups, not of records.
   */
  auditTally(since: string, until: string, bucketSeconds: number): Promise<AuditTallyRow[]>;
  /** Last write per actor, most recent first. */
  auditActors(limit: number): Promise<AuditActor[]>;
  /** Deletes at most `limit` of the oldest records older than `before`; returns how many. */
  pruneAudit(before: string, limit: number): Promise<number>;
  directoryCounts(): Promise<DirectoryCounts>;
}

/** Console sign-outs, kept in the store so they outlive the process and hold on every replica. */
export interface AdminSessionStore {
  /** Records a signed-out session until `expiresAt` (RFC 3339); prunes the ones already expired. */
  revokeAdminSession(nonce: string, expiresAt: string): Promise<void>;
  adminSessionRevoked(nonce: string): Promise<boolean>;
}
