import { type Request, type Response, Router } from 'express';
import type { RequestContext } from '../directory/context.js';
import type { UserView } from '../directory/user-mapping.js';
import { type UserDirectory, UserDirectory as Users } from '../directory/users.js';
import { parseFilter } from '../scim-model/filter.js';
import { ENTERPRISE_SCHEMA, VOLC_USER_SCHEMA } from '../scim-model/schemas.js';
import { badRequest } from '../scim-model/scim-error.js';
import { parseUserBody } from '../scim-model/user-input.js';
import { applyUserPatch, parsePatchBody } from '../scim-model/user-patch.js';
import { type ListParams, listParams, listResponse, project, scimBaseUrl, sendScim } from './http.js';

type Json = Record<string, unknown>;

/** Top-level User attributes a filter may name. */
export const USER_FILTER_ATTRIBUTES = [
  'id',
  'externalId',
  'userName',
  'displayName',
  'nickName',
  'profileUrl',
  'title',
  'userType',
  'preferredLanguage',
  'locale',
  'timezone',
  'active',
  'name',
  'emails',
  'phoneNumbers',
  'addresses',
  'ims',
  'photos',
  'groups',
  'entitlements',
  'roles',
  'x509Certificates',
  'meta',
  ENTERPRISE_SCHEMA,
  VOLC_USER_SCHEMA,
] as const;

export interface RouteDeps {
  users: UserDirectory;
  publicBaseUrl?: string;
  defaultCount: number;
  maxCount: number;
  context(req: Request, res: Response): RequestContext;
}

export interface SearchPage {
  total: number;
  resources: Json[];
}

/** One page of users for GET /Users, POST /Users/.search and the root POST /.search. */
export async function searchUsers(
  deps: RouteDeps,
  req: Request,
  res: Response,
  params: ListParams,
): Promise<SearchPage> {
  const base = scimBaseUrl(req, deps.publicBaseUrl);
  const location = (id: string) => `${base}/Users/${encodeURIComponent(id)}`;
  const filter = params.filter
    ? parseFilter(params.filter, USER_FILTER_ATTRIBUTES, { nfc: ['userName'] })
    : undefined;
  const result = await deps.users.list(
    { filter, startIndex: params.startIndex, count: params.count },
    deps.context(req, res),
    location,
  );
  const views = wantsGroups(params)
    ? await deps.users.withGroups(result.views, groupLocation(base))
    : result.views;
  const resources = views.map((view) =>
    project(Users.toScim(view, location(view.scimId)), params.attributes, params.excludedAttributes),
  );
  return { total: result.total, resources };
}

const groupLocation = (base: string) => (id: string) => `${base}/Groups/${encodeURIComponent(id)}`;

/** Is the read-only `groups` attribute part of the response? (It costs store queries.) */
function wantsGroups(params: { attributes?: string[]; excludedAttributes?: string[] }): boolean {
  const names = (list?: string[]) => (list ?? []).map((n) => n.toLowerCase().replace(/^urn:.*:user:/, ''));
  if (params.attributes)
    return names(params.attributes).some((n) => n === 'groups' || n.startsWith('groups.'));
  return !names(params.excludedAttributes).includes('groups');
}

export function usersRouter(deps: RouteDeps): Router {
  const router = Router();
  const location = (req: Request) => {
    const base = scimBaseUrl(req, deps.publicBaseUrl);
    return (id: string) => `${base}/Users/${encodeURIComponent(id)}`;
  };
  const projection = (req: Request) => listParams(req.query as Json, deps.defaultCount, deps.maxCount);
  const validParams = (req: Request): ListParams | undefined => {
    try {
      return projection(req);
    } catch {
      return undefined;
    }
  };
  const sendUser = async (
    req: Request,
    res: Response,
    status: number,
    loaded: UserView,
    given?: ListParams,
  ) => {
    const params = given ?? projection(req);
    const base = scimBaseUrl(req, deps.publicBaseUrl);
    const userLocation = `${base}/Users/${encodeURIComponent(loaded.scimId)}`;
    // A user just created belongs to no group yet: no store query for its `groups`.
    const [view] =
      status !== 201 && !loaded.groups && wantsGroups(params)
        ? await deps.users.withGroups([loaded], groupLocation(base))
        : [loaded];
    const body = project(Users.toScim(view, userLocation), params.attributes, params.excludedAttributes);
    const headers: Record<string, string> = { ETag: Users.version(view) };
    if (status === 201) headers.Location = userLocation;
    sendScim(res, status, body, headers);
  };

  const search = async (req: Request, res: Response, source: Json) => {
    const params = listParams(source, deps.defaultCount, deps.maxCount);
    const page = await searchUsers(deps, req, res, params);
    sendScim(res, 200, listResponse(page.total, params.startIndex, page.resources));
  };

  router.get('/', (req, res) => search(req, res, req.query as Json));
  router.post('/.search', (req, res) => search(req, res, (req.body ?? {}) as Json));

  router.get('/:id', async (req, res) => {
    // Malformed parameters are refused after the lookup, as ever (an unknown user stays a 404).
    const params = validParams(req);
    // The user's `groups`, when shown, come with its record: one store query.
    const groups =
      params && wantsGroups(params) ? groupLocation(scimBaseUrl(req, deps.publicBaseUrl)) : undefined;
    const view = await deps.users.get(req.params.id, deps.context(req, res), groups);
    await sendUser(req, res, 200, view, params);
  });

  // Writes check their query parameters before changing anything: a malformed one is a 400 with
  // nothing done, not a 400 after the change.
  router.post('/', async (req, res) => {
    const input = parseUserBody(req.body);
    const params = projection(req);
    const ctx = deps.context(req, res);
    // Built from CreateUser's answer and the committed record: the 201 shows what a GET will.
    await sendUser(req, res, 201, await deps.users.create(input, ctx), params);
  });

  router.put('/:id', async (req, res) => {
    const input = parseUserBody(req.body);
    if (input.id !== undefined && input.id !== req.params.id) {
      throw badRequest(
        'mutability',
        `id '${input.id}' in the body does not match '${req.params.id}' in the URL`,
      );
    }
    const params = projection(req);
    const ctx = deps.context(req, res);
    const updated = await deps.users.update(req.params.id, () => input, req.get('If-Match'), ctx);
    await sendUser(req, res, 200, updated, params);
  });

  router.patch('/:id', async (req, res) => {
    const { operations } = parsePatchBody(req.body);
    const params = projection(req);
    const ctx = deps.context(req, res);
    // The patch applies to the user as it is once this request holds it (no lost update).
    const updated = await deps.users.update(
      req.params.id,
      (view) => applyUserPatch(operations, Users.toScim(view, location(req)(view.scimId))),
      req.get('If-Match'),
      ctx,
    );
    await sendUser(req, res, 200, updated, params);
  });

  router.delete('/:id', async (req, res) => {
    await deps.users.delete(req.params.id, req.get('If-Match'), deps.context(req, res));
    sendScim(res, 204);
  });

  return router;
}
