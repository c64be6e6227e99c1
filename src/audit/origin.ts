import type { AuditUpstreamCall } from '../store/audit-types.js';

// What an audit record says besides what changed: who asked, from where, about which resource, and
// how the outcome reads as a status. The SCIM surface fills an Origin per request, the reconciler one
// per action; the directory carries it through an operation (directory/context.ts).

/** What an audit record's outcome was; the caller's `statusOf` turns it into the status it answers. */
export type AuditOutcome = 'started' | 'created' | 'changed' | 'deleted' | 'settled';

/** The resource an operation is about, once known (a refused request's record names it too). */
export interface AuditSubject {
  type: 'User' | 'Group';
  id: string | null;
  name: string | null;
}

/**
 * Who asked for an operation and where: what every audit record it writes says besides what changed.
 * Filled by the SCIM routes for a request, by the reconciler for its own actions.
 */
export interface Origin {
  /** SCIM_BEARER_TOKENS label, `sha256:<12 hex>` for an unlabelled token, or `reconciler`. */
  actor: string;
  clientIp: string | null;
  requestId: string | null;
  /** HTTP method, or the reconciler's action. */
  method: string;
  /** ms since epoch when the operation started (the record's duration). */
  startedAt: number;
  /** CloudIdentity calls made for this operation so far, with their RequestIds. */
  upstreamCalls(): readonly AuditUpstreamCall[];
  /** The status the answer carries for an outcome (the HTTP layer decides; the reconciler says 200). */
  statusOf(outcome: AuditOutcome): number;
  /** Set by the directory once it knows which resource the operation is about. */
  subject?: AuditSubject;
  /** Set once the operation committed the record of its start (status 102): its final record replaces it. */
  startRecorded?: boolean;
}
