import { type Request, Router } from 'express';
import SCIMMY from 'scimmy';
import {
  ENTERPRISE_SCHEMA,
  GROUP_SCHEMA,
  USER_SCHEMA,
  VOLC_USER_SCHEMA,
  volcUserSchemaDescription,
} from '../scim-model/schemas.js';
import { badRequest, notFound } from '../scim-model/scim-error.js';
import { listResponse, scimBaseUrl, sendScim } from './http.js';

type Json = Record<string, unknown>;

export interface DiscoveryOptions {
  publicBaseUrl?: string;
  maxResults: number;
  groups: boolean;
}

/** ServiceProviderConfig, ResourceTypes and Schemas: exactly what the bridge supports. */
export function discoveryRouter(options: DiscoveryOptions): Router {
  const router = Router();
  const base = (req: Request) => scimBaseUrl(req, options.publicBaseUrl);
  const refuseFilter = (req: Request) => {
    if (req.query.filter !== undefined)
      throw badRequest('invalidFilter', 'discovery endpoints do not support filtering');
  };

  router.get('/ServiceProviderConfig', (req, res) => {
    sendScim(res, 200, serviceProviderConfig(base(req), options.maxResults));
  });

  const resourceTypes = (req: Request): Json[] => {
    const types: Json[] = [
      {
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
        id: 'User',
        name: 'User',
        endpoint: '/Users',
        description: 'User Account (Volcengine CloudIdentity user)',
        schema: USER_SCHEMA,
        schemaExtensions: [
          { schema: ENTERPRISE_SCHEMA, required: false },
          { schema: VOLC_USER_SCHEMA, required: false },
        ],
        meta: { resourceType: 'ResourceType', location: `${base(req)}/ResourceTypes/User` },
      },
    ];
    if (options.groups) {
      types.push({
        schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
        id: 'Group',
        name: 'Group',
        endpoint: '/Groups',
        description: 'Group (Volcengine CloudIdentity user group)',
        schema: GROUP_SCHEMA,
        meta: { resourceType: 'ResourceType', location: `${base(req)}/ResourceTypes/Group` },
      });
    }
    return types;
  };

  router.get('/ResourceTypes', (req, res) => {
    refuseFilter(req);
    const types = resourceTypes(req);
    sendScim(res, 200, listResponse(types.length, 1, types));
  });
  router.get('/ResourceTypes/:name', (req, res) => {
    const found = resourceTypes(req).find((t) => t.id === req.params.name);
    if (!found) throw notFound(`ResourceType ${req.params.name} not found`);
    sendScim(res, 200, found);
  });

  const schemas = (req: Request): Json[] => {
    const describe = (definition: unknown) => {
      const d = (definition as { describe(basepath: string): Json }).describe('/Schemas');
      const meta = (d.meta ?? {}) as Json;
      return { ...d, meta: { ...meta, location: `${base(req)}/Schemas/${String(d.id)}` } };
    };
    const userDefinition = SCIMMY.Schemas.User.definition as unknown as {
      attributes: unknown[];
      describe(b: string): Json;
    };
    const list = [
      stripExtensions(describe(userDefinition)),
      describe(SCIMMY.Schemas.EnterpriseUser.definition),
      {
        ...volcUserSchemaDescription(),
        meta: { resourceType: 'Schema', location: `${base(req)}/Schemas/${VOLC_USER_SCHEMA}` },
      },
    ];
    if (options.groups) list.push(describe(SCIMMY.Schemas.Group.definition));
    return list;
  };

  router.get('/Schemas', (req, res) => {
    refuseFilter(req);
    const list = schemas(req);
    sendScim(res, 200, listResponse(list.length, 1, list));
  });
  router.get('/Schemas/:id', (req, res) => {
    const found = schemas(req).find((s) => s.id === req.params.id);
    if (!found) throw notFound(`Schema ${req.params.id} not found`);
    sendScim(res, 200, found);
  });

  return router;
}

/** The core User description must not inline the extension (it has its own /Schemas entry). */
function stripExtensions(description: Json): Json {
  const attributes = Array.isArray(description.attributes) ? description.attributes : [];
  return {
    ...description,
    attributes: attributes.filter((a) => !String((a as Json).name ?? '').startsWith('urn:')),
  };
}

export function serviceProviderConfig(baseUrl: string, maxResults: number): Json {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: true },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'OAuth Bearer Token',
        description: 'Authentication with a bearer token from SCIM_BEARER_TOKENS',
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${baseUrl}/ServiceProviderConfig` },
  };
}
