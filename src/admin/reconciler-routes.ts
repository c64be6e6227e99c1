import type { Request, Response, Router } from 'express';
import type { Reconciler } from '../directory/reconciler.js';

// GET /admin/api/reconciler: the reconciler's report (ReconcilerReport, JSON) behind the admin
// token: pending intents with their attempts and last error, drift found/repaired/reported, totals.
export function reconcilerRoutes(reconciler: Reconciler): (router: Router) => void {
  return (router) => {
    router.get('/reconciler', async (_req: Request, res: Response) => {
      // Fresh counts when the store answers; the last known report otherwise.
      await reconciler.refresh().catch(() => undefined);
      res.json(reconciler.report());
    });
  };
}
