import { type Request, type Response, Router } from 'express';
import { ScimError } from '../scim-model/scim-error.js';
import { type GroupRouteDeps, searchGroups } from './groups-routes.js';
import { listParams, listResponse, sendScim } from './http.js';
import { type RouteDeps, type SearchPage, searchUsers } from './users-routes.js';

type Json = Record<string, unknown>;

/**
 * POST /.search (RFC 7644 §3.4.3): users, then groups, as one result list. A filter naming an
 * attribute one resource type lacks simply matches none of that type.
 */
export function rootSearchRouter(users: RouteDeps, groups: GroupRouteDeps): Router {
  const router = Router();
  router.post('/.search', async (req: Request, res: Response) => {
    const params = listParams((req.body ?? {}) as Json, users.defaultCount, users.maxCount);
    const orNone = async (page: Promise<SearchPage>): Promise<SearchPage> => {
      try {
        return await page;
      } catch (e) {
        if (e instanceof ScimError && e.scimType === 'invalidFilter' && /unknown attribute/.test(e.detail)) {
          return { total: 0, resources: [] };
        }
        throw e;
      }
    };
    const userPage = await orNone(searchUsers(users, req, res, params));
    // Groups follow the users: their slice starts where the users' total ends.
    const groupStart = Math.max(1, params.startIndex - userPage.total);
    const groupCount = params.count - userPage.resources.length;
    const groupPage = await orNone(
      searchGroups(groups, req, res, { ...params, startIndex: groupStart, count: Math.max(0, groupCount) }),
    );
    const resources = [...userPage.resources, ...groupPage.resources];
    sendScim(res, 200, listResponse(userPage.total + groupPage.total, params.startIndex, resources));
  });
  return router;
}
