import { type Request, type Response, Router } from 'express';
import type { RequestContext } from '../directory/context.js';
import { type GroupDirectory, GroupDirectory as Groups, type GroupView } from '../directory/groups.js';
import { parseFilter } from '../scim-model/filter.js';
import {
  type GroupInputLimits,
  parseGroupBody,
  parseGroupPatch,
  wantsMembers,
} from '../scim-model/group-input.js';
import { badRequest } from '../scim-model/scim-error.js';
import { type ListParams, listParams, listResponse, project, scimBaseUrl, sendScim } from './http.js';

type Json = Record<string, unknown>;

/** Top-level Group attributes a filter may name (members: not filterable, it would need every list). */
export const GROUP_FILTER_ATTRIBUTES = ['id', 'externalId', 'displayName', 'meta'] as const;

export interface GroupRouteDeps {
  groups: GroupDirectory;
  publicBaseUrl?: string;
  defaultCount: number;
  maxCount: number;
  /** MAX_MEMBERS_PER_REQUEST (default when absent) */
  inputLimits?: GroupInputLimits;
  context(req: Request, res: Response): RequestContext;
}

/** One page of groups for GET /Groups, POST /Groups/.search and the root POST /.search. */
export async function searchGroups(
  deps: GroupRouteDeps,
  req: Request,
  res: Response,
  params: ListParams,
): Promise<{ total: number; resources: Json[] }> {
  const filter = params.filter
    ? parseFilter(params.filter, GROUP_FILTER_ATTRIBUTES, { nfc: ['displayName'] })
    : undefined;
  const result = await deps.groups.list(
    {
      filter,
      startIndex: params.startIndex,
      count: params.count,
      members: wantsMembers(params.attributes, params.excludedAttributes),
    },
    deps.context(req, res),
  );
  const base = scimBaseUrl(req, deps.publicBaseUrl);
  const resources = result.views.map((view) =>
    project(Groups.toScim(view, base), params.attributes, params.excludedAttributes),
  );
  return { total: result.total, resources };
}

export function groupsRouter(deps: GroupRouteDeps): Router {
  const router = Router();
  const base = (req: Request) => scimBaseUrl(req, deps.publicBaseUrl);
  const projection = (req: Request) => listParams(req.query as Json, deps.defaultCount, deps.maxCount);
  type Projection = { attributes?: string[]; excludedAttributes?: string[] };
  const membersWanted = (p: Projection) => wantsMembers(p.attributes, p.excludedAttributes);
  const sendGroup = (req: Request, res: Response, status: number, view: GroupView, params: Projection) => {
    const headers: Record<string, string> = { ETag: Groups.version(view) };
    if (status === 201) headers.Location = `${base(req)}/Groups/${encodeURIComponent(view.scimId)}`;
    const body = project(Groups.toScim(view, base(req)), params.attributes, params.excludedAttributes);
    sendScim(res, status, body, headers);
  };
  /** The group as the response shows it: members read (again) only when the response includes them. */
  const reload = async (params: Projection, view: GroupView, ctx: RequestContext, knownEmpty = false) => {
    if (!membersWanted(params)) return view;
    if (knownEmpty) return { ...view, members: [] };
    return { ...view, members: await deps.groups.members(view.scimId, ctx) };
  };

  const search = async (req: Request, res: Response, source: Json) => {
    const params = listParams(source, deps.defaultCount, deps.maxCount);
    const page = await searchGroups(deps, req, res, params);
    sendScim(res, 200, listResponse(page.total, params.startIndex, page.resources));
  };

  router.get('/', (req, res) => search(req, res, req.query as Json));
  router.post('/.search', (req, res) => search(req, res, (req.body ?? {}) as Json));

  router.get('/:id', async (req, res) => {
    const params = projection(req);
    const view = await deps.groups.get(req.params.id, deps.context(req, res), membersWanted(params));
    sendGroup(req, res, 200, view, params);
  });

  router.post('/', async (req, res) => {
    const input = parseGroupBody(req.body, deps.inputLimits);
    const params = projection(req);
    const ctx = deps.context(req, res);
    const view = await deps.groups.create(input, ctx);
    sendGroup(req, res, 201, await reload(params, view, ctx, !input.members?.length), params);
  });

  router.put('/:id', async (req, res) => {
    const input = parseGroupBody(req.body, deps.inputLimits);
    if (input.id !== undefined && input.id !== req.params.id) {
      throw badRequest(
        'mutability',
        `id '${input.id}' in the body does not match '${req.params.id}' in the URL`,
      );
    }
    const params = projection(req);
    const ctx = deps.context(req, res);
    const updated = await deps.groups.replace(req.params.id, input, req.get('If-Match'), ctx);
    sendGroup(req, res, 200, await reload(params, updated, ctx), params);
  });

  // 204 (Entra's recommendation, fine for Okta) unless the client asked for attributes (RFC 7644 §3.5.2).
  router.patch('/:id', async (req, res) => {
    const plan = parseGroupPatch(req.body, deps.inputLimits);
    const params = projection(req);
    const ctx = deps.context(req, res);
    const query = req.query as Json;
    const bare = query.attributes === undefined && query.excludedAttributes === undefined;
    // The audit record states the status this request answers.
    if (bare) {
      const statusOf = ctx.origin.statusOf;
      ctx.origin.statusOf = (outcome) => (outcome === 'changed' ? 204 : statusOf(outcome));
    }
    const updated = await deps.groups.patch(req.params.id, plan, req.get('If-Match'), ctx);
    if (bare) {
      sendScim(res, 204, undefined, { ETag: Groups.version(updated) });
      return;
    }
    sendGroup(req, res, 200, await reload(params, updated, ctx), params);
  });

  router.delete('/:id', async (req, res) => {
    await deps.groups.delete(req.params.id, req.get('If-Match'), deps.context(req, res));
    sendScim(res, 204);
  });

  return router;
}
