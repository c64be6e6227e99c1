import SCIMMY from 'scimmy';
import { isPlainObject } from './normalize.js';
import { USER_SCHEMA } from './schemas.js';

// Attribute names are case-insensitive (RFC 7643 §2.1) but scimmy matches PATCH paths
// case-sensitively; Entra's default mappings send `emails[type eq "other"].Value` and
// `addresses[type eq "work"].Formatted`. Paths and path-less value keys are rewritten to the
// schema's spelling first; names the schema does not know are left for scimmy to report.

type Json = Record<string, unknown>;

interface NameNode {
  name: string;
  sub: Map<string, NameNode>;
}
let userNames: Map<string, NameNode> | undefined;

function userNameTree(): Map<string, NameNode> {
  const build = (attributes: unknown[]): Map<string, NameNode> => {
    const map = new Map<string, NameNode>();
    for (const a of attributes as Array<{
      name?: string;
      id?: string;
      subAttributes?: unknown[];
      attributes?: unknown[];
    }>) {
      const name = a.id ?? a.name;
      if (name) map.set(name.toLowerCase(), { name, sub: build(a.subAttributes ?? a.attributes ?? []) });
    }
    return map;
  };
  userNames ??= build((SCIMMY.Schemas.User.definition as unknown as { attributes: unknown[] }).attributes);
  return userNames;
}

const CORE_USER_PREFIX = `${USER_SCHEMA}:`;

/** `Emails[Type eq "work"].Value` → `emails[type eq "work"].value`; extension URN prefixes kept, the core one dropped. */
export function canonicalUserPath(path: string): string {
  let names = userNameTree();
  let prefix = '';
  let rest = path;
  const lower = path.toLowerCase();
  if (lower.startsWith(CORE_USER_PREFIX.toLowerCase())) {
    // A fully qualified core attribute (RFC 7644 §3.10) is the attribute itself; scimmy's PatchOp
    // only understands the short form.
    rest = path.slice(CORE_USER_PREFIX.length);
  } else if (lower.startsWith('urn:')) {
    const extension = [...names.values()].find((n) => lower.startsWith(`${n.name.toLowerCase()}:`));
    if (!extension) return path;
    prefix = `${extension.name}:`;
    rest = path.slice(prefix.length);
    names = extension.sub;
  }
  const match = /^([^.[\]]+)(?:\[(.*)\])?(?:\.([^.[\]]+))?$/.exec(rest);
  if (!match) return path;
  const [, attribute, filter, sub] = match;
  const node = names.get(attribute.toLowerCase());
  if (!node) return path;
  const subName = (name: string) => node.sub.get(name.toLowerCase())?.name ?? name;
  const canonicalFilter =
    filter === undefined
      ? ''
      : `[${filter
          .split(/("(?:[^"\\]|\\.)*")/)
          .map((part, i) => (i % 2 === 1 ? part : part.replace(/[A-Za-z$][\w$]*/g, subName)))
          .join('')}]`;
  return `${prefix}${node.name}${canonicalFilter}${sub === undefined ? '' : `.${subName(sub)}`}`;
}

/** A PATCH operation with its path, or the keys of its path-less value, in the schema's spelling. */
export function canonicalOperation(raw: unknown): unknown {
  if (!isPlainObject(raw)) return raw;
  const out: Json = { ...raw };
  if (typeof out.path === 'string') out.path = canonicalUserPath(out.path.trim());
  else if (out.path === undefined && isPlainObject(out.value)) {
    out.value = Object.fromEntries(
      Object.entries(out.value).map(([key, value]) => [canonicalUserPath(key), value]),
    );
  }
  return out;
}
