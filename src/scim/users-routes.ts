import { type Request, type Response, Router } from 'express';
import type { RequestContext } from '../directory/context.js';
import type { UserView } from '../directory/user-mapping.js';
import { type UserDirectory, UserDirectory as Users } from '../directory/users.js';
import { badRequest, notFound } from './errors.js';
import { parseFilter } from './filter.js';
import { listParams, listResponse, project, scimBaseUrl, sendScim } from './http.js';
import { ENTERPRISE_SCHEMA, VOLC_USER_SCHEMA } from './schemas.js';
import { applyUserPatch, parsePatchBody, parseUserBody } from './user-input.js';

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

export function usersRouter(deps: RouteDeps): Router {
  const router = Router();
  const location = (req: Request) => {
    const base = scimBaseUrl(req, deps.publicBaseUrl);
    return (id: string) => `${base}/Users/${encodeURIComponent(id)}`;
  };
  const render = (
    req: Request,
    view: UserView,
    params?: { attributes?: string[]; excludedAttributes?: string[] },
  ) =>
    project(Users.toScim(view, location(req)(view.scimId)), params?.attributes, params?.excludedAttributes);
  const projection = (req: Request) => listParams(req.query as Json, deps.defaultCount, deps.maxCount);
  const sendUser = (req: Request, res: Response, status: number, view: UserView) => {
    const body = render(req, view, projection(req));
    const headers: Record<string, string> = { ETag: Users.version(view) };
    if (status === 201) headers.Location = location(req)(view.scimId);
    sendScim(res, status, body, headers);
  };

  const search = async (req: Request, res: Response, source: Json) => {
    const params = listParams(source, deps.defaultCount, deps.maxCount);
    const ctx = deps.context(req, res);
    const filter = params.filter ? parseFilter(params.filter, USER_FILTER_ATTRIBUTES) : undefined;
    const result = await deps.users.list(
      { filter, startIndex: params.startIndex, count: params.count },
      ctx,
      location(req),
    );
    const resources = result.views.map((v) => render(req, v, params));
    sendScim(res, 200, listResponse(result.total, params.startIndex, resources));
  };

  router.get('/', (req, res) => search(req, res, req.query as Json));
  router.post('/.search', (req, res) => search(req, res, (req.body ?? {}) as Json));

  router.get('/:id', async (req, res) => {
    const view = await deps.users.get(req.params.id, deps.context(req, res));
    sendUser(req, res, 200, view);
  });

  router.post('/', async (req, res) => {
    const input = parseUserBody(req.body);
    const view = await deps.users.create(input, deps.context(req, res));
    sendUser(req, res, 201, view);
  });

  router.put('/:id', async (req, res) => {
    const input = parseUserBody(req.body);
    if (input.id !== undefined && input.id !== req.params.id) {
      throw badRequest(
        'mutability',
        `id '${input.id}' in the body does not match '${req.params.id}' in the URL`,
      );
    }
    const ctx = deps.context(req, res);
    const view = await deps.users.get(req.params.id, ctx);
    const updated = await deps.users.write(view, input, req.get('If-Match'), ctx);
    sendUser(req, res, 200, updated);
  });

  router.patch('/:id', async (req, res) => {
    const { operations } = parsePatchBody(req.body);
    const ctx = deps.context(req, res);
    const view = await deps.users.get(req.params.id, ctx);
    const current = Users.toScim(view, location(req)(view.scimId));
    const input = await applyUserPatch(operations, current);
    const updated = await deps.users.write(view, input, req.get('If-Match'), ctx);
    sendUser(req, res, 200, updated);
  });

  router.delete('/:id', async (req, res) => {
    const ctx = deps.context(req, res);
    const view = await deps.users.find(req.params.id, ctx);
    if (!view) throw notFound(`User ${req.params.id} not found`);
    await deps.users.delete(view, req.get('If-Match'), ctx);
    sendScim(res, 204);
  });

  return router;
}
