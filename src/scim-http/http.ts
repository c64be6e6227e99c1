import type { Request, Response } from 'express';
import { isPlainObject } from '../scim-model/normalize.js';
import { LIST_RESPONSE_SCHEMA } from '../scim-model/schemas.js';
import { badRequest, type ScimError } from '../scim-model/scim-error.js';

type Json = Record<string, unknown>;

export const SCIM_CONTENT_TYPE = 'application/scim+json';

export function sendScim(
  res: Response,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.statusCode = status;
  if (body === undefined) {
    res.end();
    return;
  }
  // A conditional GET whose If-None-Match names the current ETag (RFC 7644 §3.14): 304, no body.
  if (res.req.headers['if-none-match'] !== undefined && res.req.fresh) {
    res.statusCode = 304;
    res.end();
    return;
  }
  // Straight to Node rather than Express's res.send, which re-parses the Content-Type and
  // evaluates conditional-request headers on every response.
  const payload = Buffer.from(JSON.stringify(body));
  res.setHeader('Content-Type', `${SCIM_CONTENT_TYPE}; charset=utf-8`);
  res.setHeader('Content-Length', payload.length);
  res.end(payload);
}

export function sendError(res: Response, error: ScimError): void {
  const headers: Record<string, string> = {};
  if (error.retryAfter !== undefined) headers['Retry-After'] = String(error.retryAfter);
  if (error.status === 401) headers['WWW-Authenticate'] = 'Bearer realm="scim"';
  sendScim(res, error.status, error.toBody(), headers);
}

export const SCIM_BASE_PATH = '/scim/v2';

const SCIM_ENDPOINTS = new Set([
  'Users',
  'Groups',
  'Me',
  'Bulk',
  'ServiceProviderConfig',
  'ResourceTypes',
  'Schemas',
  '.search',
]);

/**
 * The metric and log label of a SCIM path no route matched (a request refused before routing, such
 * as a 401): the endpoint's route template, bounded to the endpoints SCIM defines; undefined for
 * anything else. Never contains ids or anything else a client chose.
 */
export function scimRouteLabel(path: string): string | undefined {
  if (path !== SCIM_BASE_PATH && !path.startsWith(`${SCIM_BASE_PATH}/`)) return undefined;
  const [endpoint, ...rest] = path.slice(SCIM_BASE_PATH.length + 1).split('/');
  if (!SCIM_ENDPOINTS.has(endpoint)) return 'unmatched';
  const parts = rest.filter(Boolean);
  if (parts.length === 0) return `${SCIM_BASE_PATH}/${endpoint}`;
  if (parts.length === 1) {
    const sub = parts[0] === '.search' ? '.search' : endpoint === 'ResourceTypes' ? ':name' : ':id';
    return `${SCIM_BASE_PATH}/${endpoint}/${sub}`;
  }
  return 'unmatched';
}

/**
 * The base URL resources are located under: PUBLIC_BASE_URL, else what the request was sent to.
 * `req.protocol` and `req.host` follow X-Forwarded-Proto/-Host only for a proxy TRUST_PROXY trusts.
 */
export function scimBaseUrl(req: Request, publicBaseUrl: string | undefined): string {
  const origin = publicBaseUrl ?? `${req.protocol}://${req.host ?? 'localhost'}`;
  return `${origin}${SCIM_BASE_PATH}`;
}

export interface ListParams {
  filter?: string;
  startIndex: number;
  count: number;
  attributes?: string[];
  excludedAttributes?: string[];
}

function integerParam(name: string, raw: unknown, fallback: number): number {
  if (raw === undefined || raw === null || raw === '') return fallback;
  // Only numbers and text: String() of a JSON object from a .search body may throw ({"toString": null}).
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw.trim()) : Number.NaN;
  if (!Number.isFinite(n) || !Number.isInteger(n))
    throw badRequest('invalidValue', `${name} must be an integer`);
  return n;
}

function listParam(name: string, raw: unknown): string[] | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  const items = Array.isArray(raw) ? raw : [raw];
  if (!items.every((item) => typeof item === 'string'))
    throw badRequest('invalidValue', `${name} must be a string or an array of strings`);
  const parts = Array.isArray(raw) ? (raw as string[]) : (raw as string).split(',');
  const names = parts
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => attributeName(name, s));
  return names.length ? names : undefined;
}

const VALUE_FILTER = /^([^[\]]+)\[[^[\]]*\](\.[^[\]]+)?$/;

/**
 * `emails[type eq "work"]` names an attribute with a value filter, which RFC 7644 §3.9 does not
 * allow here. Clients send it anyway: it is read as the attribute (`emails`, or `emails.value` for
 * `emails[type eq "work"].value`), never silently dropped. Other brackets are a syntax error.
 */
function attributeName(param: string, raw: string): string {
  if (!raw.includes('[') && !raw.includes(']')) return raw;
  const match = VALUE_FILTER.exec(raw);
  if (!match) {
    throw badRequest('invalidSyntax', `${param}: '${raw}' is not an attribute name (brackets do not pair)`);
  }
  return `${match[1].trim()}${match[2] ?? ''}`;
}

/** Query string (GET) or SearchRequest body (POST .search) → list parameters. */
export function listParams(source: Json, defaultCount: number, maxCount: number): ListParams {
  const filter = source.filter;
  if (filter !== undefined && typeof filter !== 'string')
    throw badRequest('invalidFilter', 'filter must be a string');
  const startIndex = Math.max(1, integerParam('startIndex', source.startIndex, 1));
  const count = Math.min(maxCount, Math.max(0, integerParam('count', source.count, defaultCount)));
  return {
    filter: typeof filter === 'string' && filter.trim() !== '' ? filter : undefined,
    startIndex,
    count,
    attributes: listParam('attributes', source.attributes),
    excludedAttributes: listParam('excludedAttributes', source.excludedAttributes),
  };
}

export function listResponse(total: number, startIndex: number, resources: Json[]): Json {
  return {
    schemas: [LIST_RESPONSE_SCHEMA],
    totalResults: total,
    startIndex,
    itemsPerPage: resources.length,
    Resources: resources,
  };
}

const ALWAYS_RETURNED = new Set(['id', 'schemas']);

/** RFC 7644 §3.9 attributes / excludedAttributes, for top-level, sub- and extension attributes. */
export function project(resource: Json, attributes?: string[], excluded?: string[]): Json {
  if (!attributes && !excluded) return resource;
  const paths = (list: string[]) => list.map((name) => splitPath(name, resource));
  if (attributes) {
    const out: Json = {};
    for (const key of Object.keys(resource)) if (ALWAYS_RETURNED.has(key)) out[key] = resource[key];
    for (const [top, sub] of paths(attributes)) {
      const key = findKey(resource, top);
      if (key === undefined) continue;
      if (!sub) out[key] = resource[key];
      else copySub(resource, out, key, sub);
    }
    return withPresentSchemas(out, resource);
  }
  const out: Json = structuredClone(resource);
  for (const [top, sub] of paths(excluded!)) {
    const key = findKey(out, top);
    if (key === undefined || ALWAYS_RETURNED.has(key)) continue;
    if (!sub) delete out[key];
    else {
      const value = out[key];
      const items = Array.isArray(value) ? value : [value];
      for (const item of items) {
        if (isPlainObject(item)) {
          const subKey = findKey(item, sub);
          if (subKey) delete item[subKey];
        }
      }
    }
  }
  return withPresentSchemas(out, resource);
}

/** `schemas` lists an extension only while the projected resource still carries it. */
function withPresentSchemas(out: Json, resource: Json): Json {
  if (!Array.isArray(out.schemas)) return out;
  const dropped = (id: unknown) => typeof id === 'string' && id in resource && !(id in out);
  if (out.schemas.some(dropped)) out.schemas = out.schemas.filter((id) => !dropped(id));
  return out;
}

function findKey(obj: Json, name: string): string | undefined {
  const lower = name.toLowerCase();
  return Object.keys(obj).find((k) => k.toLowerCase() === lower);
}

/** 'name.givenName' → ['name','givenName']; 'urn:…:User:employeeNumber' → [urn, 'employeeNumber']. */
function splitPath(name: string, resource: Json): [string, string | undefined] {
  if (name.toLowerCase().startsWith('urn:')) {
    const urn = Object.keys(resource).find(
      (k) => k.startsWith('urn:') && name.toLowerCase().startsWith(`${k.toLowerCase()}:`),
    );
    if (urn) return [urn, name.slice(urn.length + 1)];
    const core = name.match(/^urn:ietf:params:scim:schemas:core:2\.0:(?:User|Group):(.+)$/i);
    if (core) return splitPath(core[1], resource);
    return [name, undefined];
  }
  const dot = name.indexOf('.');
  return dot < 0 ? [name, undefined] : [name.slice(0, dot), name.slice(dot + 1)];
}

function copySub(from: Json, to: Json, key: string, sub: string): void {
  const value = from[key];
  const pick = (item: unknown) => {
    if (!isPlainObject(item)) return undefined;
    const subKey = findKey(item, sub);
    return subKey === undefined ? undefined : { [subKey]: item[subKey] };
  };
  if (Array.isArray(value)) {
    const picked = value.map(pick).filter(Boolean) as Json[];
    const existing = Array.isArray(to[key]) ? (to[key] as Json[]) : [];
    to[key] = existing.length ? existing.map((e, i) => ({ ...e, ...picked[i] })) : picked;
  } else {
    const picked = pick(value);
    if (picked) to[key] = { ...(isPlainObject(to[key]) ? (to[key] as Json) : {}), ...picked };
  }
}
