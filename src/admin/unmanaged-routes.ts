import type { Request, Response, Router } from 'express';
import type { ManualRun, Reconciler } from '../directory/reconciler.js';
import type { AuditEntry } from '../store/audit-types.js';
import type { DriftSweepState } from '../store/drift-types.js';
import type { BridgeStore } from '../store/types.js';
import { adminCaller, sendAdminError } from './api.js';
import { handle } from './audit-routes.js';
import { intParam, queryParams, textParam } from './params.js';
import { sameOrigin } from './session.js';

// Accounts no IdP manages and Reconcile now, under /admin/api:
// - GET unmanaged: the drift pass's snapshot (directory/unmanaged.ts), read from the store, so every
//   replica answers the same and a page view costs CloudIdentity nothing: the accounts no SCIM
//   resource maps (paged, `q` filters), the findings only an operator can resolve (renames,
//   tombstone collisions), and how old and how whole the snapshot is.
// - POST reconciler/run: settle every pending intent and run a drift pass now (Reconciler.runNow),
//   recorded in the audit trail with the admin's label. From the console (session cookie) it must
//   pass the same CSRF check as sign-in; a script with the bearer token needs none.

/** Findings listed beside the accounts (their total is complete). */
const FINDINGS_LIMIT = 100;

export interface SnapshotAge {
  /** A walk of every CloudIdentity user and group has ended at least once. */
  complete: boolean;
  /** When the last whole walk ended. */
  completedAt: string | null;
  /** When the last pass that added to the snapshot finished. */
  asOf: string | null;
  ageSeconds: number | null;
  /** The walk under way: how far it is. */
  sweep: {
    number: number;
    startedAt: string;
    usersListed: number;
    upstreamUsers: number | null;
    groupsWalked: number;
  } | null;
  /** How often the leader runs a drift pass (0: only Reconcile now runs one). */
  passEverySeconds: number;
}

export function snapshotAge(state: DriftSweepState | null, driftIntervalMs: number): SnapshotAge {
  const asOf = state?.lastPassAt ?? state?.completed?.finishedAt ?? null;
  return {
    complete: Boolean(state?.completed),
    completedAt: state?.completed?.finishedAt ?? null,
    asOf,
    ageSeconds: asOf ? Math.max(0, Math.round((Date.now() - Date.parse(asOf)) / 1000)) : null,
    sweep: state && {
      number: state.sweep,
      startedAt: state.startedAt,
      usersListed: state.usersListed,
      upstreamUsers: state.upstreamUsers,
      groupsWalked: state.groupsWalked,
    },
    passEverySeconds: Math.round(driftIntervalMs / 1000),
  };
}

export interface UnmanagedRoutesDeps {
  store: BridgeStore;
  reconciler: Reconciler;
  driftIntervalMs: number;
}

const REFUSALS: Record<Exclude<ManualRun, { ran: true }>['reason'], [number, string]> = {
  running: [409, 'reconcile_running'],
  notLeader: [409, 'not_leader'],
  tooSoon: [429, 'too_soon'],
};

export function unmanagedRoutes(deps: UnmanagedRoutesDeps): (router: Router) => void {
  const { store, reconciler } = deps;
  return (router) => {
    router.get(
      '/unmanaged',
      handle(async (req, res) => {
        const p = queryParams(req, ['offset', 'limit', 'q']);
        const limit = intParam('limit', p.limit, 50, 1, 200);
        const offset = intParam('offset', p.offset, 0, 0, 1_000_000);
        const q = textParam('q', p.q, 100);
        const [state, page, findings] = await Promise.all([
          store.driftSweep(),
          store.unmanagedAccounts({ offset, limit, q }),
          store.driftFindings(FINDINGS_LIMIT),
        ]);
        res.json({
          snapshot: snapshotAge(state, deps.driftIntervalMs),
          total: page.total,
          offset,
          limit,
          accounts: page.accounts,
          findings: findings.findings,
          findingsTotal: findings.total,
        });
      }),
    );

    router.post(
      '/reconciler/run',
      handle(async (req: Request, res: Response) => {
        const caller = adminCaller(res);
        if (caller.viaSession && !sameOrigin(req)) {
          sendAdminError(
            res,
            403,
            'cross_origin',
            'Reconcile now must come from the console itself (Origin or Sec-Fetch-Site of this site)',
          );
          return;
        }
        const started = Date.now();
        const run = await reconciler.runNow();
        if (!run.ran) {
          const [status, code] = REFUSALS[run.reason];
          if (run.retryAfterSeconds !== undefined)
            res.setHeader('Retry-After', String(run.retryAfterSeconds));
          sendAdminError(res, status, code, run.detail);
          return;
        }
        const r = run.result;
        const repaired = r.drift.filter((f) => f.action === 'repaired').length;
        const summary =
          `settled ${r.settled} intent(s), ${r.failed} failed, ${r.skippedBusy} busy, ${r.pending} pending; ` +
          `drift: ${r.drift.length} found, ${repaired} repaired` +
          (r.unmanaged
            ? `; walk: ${r.unmanaged.usersListed} user(s) listed, ${r.unmanaged.unmanagedFound} unmanaged${r.unmanaged.sweepFinished ? ', walk ended' : ''}`
            : '; walk: not advanced');
        const entry: AuditEntry = {
          at: new Date().toISOString(),
          actor: caller.actor,
          clientIp: req.ip ?? null,
          requestId: (res.locals.requestId as string | undefined) ?? null,
          method: 'reconcile now',
          resourceType: null,
          resourceId: null,
          resourceName: null,
          status: 200,
          scimType: null,
          detail: null,
          durationMs: Date.now() - started,
          changes: { note: summary },
          upstream: [],
        };
        await store.appendAudit(entry);
        const [state, page] = await Promise.all([
          store.driftSweep(),
          store.unmanagedAccounts({ offset: 0, limit: 1 }),
        ]);
        res.json({
          ran: true,
          actor: caller.actor,
          startedAt: run.startedAt,
          finishedAt: run.finishedAt,
          summary,
          settled: r.settled,
          failed: r.failed,
          skippedBusy: r.skippedBusy,
          pending: r.pending,
          drift: {
            found: r.drift.length,
            repaired,
            findings: r.drift.map(({ kind, resource, detail, action }) => ({
              kind,
              resource,
              detail,
              action,
            })),
          },
          walk: r.unmanaged,
          unmanagedTotal: page.total,
          snapshot: snapshotAge(state, deps.driftIntervalMs),
        });
      }),
    );
  };
}
