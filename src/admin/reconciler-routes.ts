import type { Request, Response, Router } from 'express';
import type { Reconciler } from '../directory/reconciler.js';
import type { ReconcilerStatus } from '../directory/reconciler-status.js';

// GET /admin/api/reconciler: the reconciler's report (ReconcilerReport, JSON) behind the admin
// token: pending intents with their attempts and last error, drift found/repaired/reported, totals.
// Any replica also answers which replica it is and the status the leader last published (with its
// age): a replica that does not lead has no run of its own to report.
export function reconcilerRoutes(
  reconciler: Reconciler,
  leader?: { status: ReconcilerStatus; replica: string },
): (router: Router) => void {
  return (router) => {
    router.get('/reconciler', async (_req: Request, res: Response) => {
      // Fresh counts when the store answers; the last known report otherwise.
      await reconciler.refresh().catch(() => undefined);
      const published = leader && {
        replica: leader.replica,
        leaderStatus: await leader.status.read().catch(() => null),
      };
      res.json({ ...reconciler.report(), ...published });
    });
  };
}
