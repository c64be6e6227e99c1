// The two units of work one POST /Users commits on the store, in the shape the bridge gives them
// (src/directory/users-write.ts): unit 1, before CreateUser, the pending record with the record
// that the create started (status 102); unit 2, after it, the record made ready with the create's
// record, which replaces the start one. Shared by the durable floor (bench/floor/durable.ts) and
// the store's micro-benchmark (bench/store-statements.ts). Types only from src/: the floor runs
// this file transpiled, outside the source tree.
import type { AuditChanges, AuditEntry, AuditUpstreamCall } from '../../src/store/audit-types.js';
import type { JsonObject, StoreWrite } from '../../src/store/types.js';
import type { CreateUserInput } from '../../src/volcengine/types.js';

/** One create as its audit records and its store record name it. */
export interface CreateAttempt {
  scimId: string;
  userName: string;
  externalId: string | null;
  /** The SCIM attributes kept in the record. */
  attributes: JsonObject;
  requestId: string;
  actor: string;
  clientIp: string | null;
  /** Date.now() when the request arrived. */
  startedAt: number;
}

export const CREATE_STARTED_NOTE = 'create started: the record is pending until CreateUser answers';

function auditEntry(
  a: CreateAttempt,
  status: number,
  changes: AuditChanges,
  upstream: AuditUpstreamCall[],
  detail: string | null = null,
): AuditEntry {
  const now = Date.now();
  return {
    at: new Date(now).toISOString(),
    actor: a.actor,
    clientIp: a.clientIp,
    requestId: a.requestId,
    method: 'POST',
    resourceType: 'User',
    resourceId: a.scimId,
    resourceName: a.userName,
    status,
    scimType: null,
    detail,
    durationMs: now - a.startedAt,
    changes,
    upstream,
  };
}

/** Unit 1, committed before CreateUser: the pending record and the record that the create started. */
export function pendingUnit(a: CreateAttempt): StoreWrite[] {
  return [
    {
      op: 'insertUser',
      record: {
        scimId: a.scimId,
        upstreamUserId: null,
        state: 'pending',
        userName: a.userName,
        externalId: a.externalId,
        active: true,
        attributes: a.attributes,
        tombstoneGroupIds: [],
      },
    },
    { op: 'appendAudit', entry: auditEntry(a, 102, { note: CREATE_STARTED_NOTE }, []), replacesStart: false },
  ];
}

/** The CloudIdentity fields a create set, old → new (names and values, as the bridge records them). */
export function createdFields(input: CreateUserInput): AuditChanges['fields'] {
  const fields: NonNullable<AuditChanges['fields']> = {};
  for (const [name, value] of Object.entries(input))
    if (typeof value === 'string') fields[name] = { from: null, to: value };
  return fields;
}

/**
 * Unit 2, after CreateUser answered: the record (at `pendingVersion`, as unit 1 left it) made ready
 * and mapped to `upstreamUserId`, and the create's record replacing the start one.
 */
export function readyUnit(
  a: CreateAttempt,
  pendingVersion: number,
  upstreamUserId: string,
  input: CreateUserInput,
  upstream: AuditUpstreamCall[],
): StoreWrite[] {
  return [
    {
      op: 'updateUser',
      scimId: a.scimId,
      changes: { state: 'ready', upstreamUserId },
      expectedVersion: pendingVersion,
    },
    {
      op: 'appendAudit',
      entry: auditEntry(a, 201, { fields: createdFields(input) }, upstream),
      replacesStart: true,
    },
  ];
}

/** Unit 2 of a create CloudIdentity refused: the pending record removed, the failure recorded. */
export function failedUnit(
  a: CreateAttempt,
  status: number,
  detail: string,
  upstream: AuditUpstreamCall[],
): StoreWrite[] {
  return [
    { op: 'deleteUser', scimId: a.scimId },
    { op: 'appendAudit', entry: auditEntry(a, status, {}, upstream, detail), replacesStart: true },
  ];
}
