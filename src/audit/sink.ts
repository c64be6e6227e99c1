import type { Logger } from 'pino';
import type { AuditChanges, AuditEntry, AuditStore, AuditUpstreamCall } from '../store/audit-types.js';

// For writers other than SCIM requests (the reconciler): one call per action taken, e.g.
//   await sink.record({ action: 'repair-membership', resourceType: 'Group', resourceId: groupId,
//     resourceName, changes: { members: { added: [userId], removed: [] }, note: 're-added' },
//     upstream: [{ action: 'AddUserToGroup', requestId, outcome: 'ok' }], status: 200 });
// A failed repair: status 500 (or the upstream HTTP status) with `detail`. Never throws: a lost
// audit line is logged, the repair itself stands.

export interface AuditSinkEntry {
  /** What was done: 'retry-intent', 'repair-membership', 'report-drift', … (stored as `method`). */
  action: string;
  resourceType: 'User' | 'Group' | null;
  resourceId: string | null;
  resourceName?: string | null;
  changes?: AuditChanges;
  upstream?: AuditUpstreamCall[];
  /** HTTP-like outcome: 200 done, 4xx/5xx failed. Default 200. */
  status?: number;
  detail?: string | null;
  durationMs?: number;
}

export interface AuditSink {
  record(entry: AuditSinkEntry): Promise<void>;
}

export function storeAuditSink(store: AuditStore, logger: Logger, actor = 'reconciler'): AuditSink {
  return {
    async record(e) {
      const entry: AuditEntry = {
        at: new Date().toISOString(),
        actor,
        clientIp: null,
        requestId: null,
        method: e.action,
        resourceType: e.resourceType,
        resourceId: e.resourceId,
        resourceName: e.resourceName ?? null,
        status: e.status ?? 200,
        scimType: null,
        detail: e.detail ?? null,
        durationMs: e.durationMs ?? 0,
        changes: e.changes ?? {},
        upstream: e.upstream ?? [],
      };
      try {
        await store.appendAudit(entry);
      } catch (err) {
        logger.error(
          { err, audit: { method: entry.method, resourceId: entry.resourceId } },
          'could not write an audit record',
        );
      }
    },
  };
}
