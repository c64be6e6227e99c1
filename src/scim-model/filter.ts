import { type Comparison, filterToDnf, type Literal } from './filter-parse.js';
import { badRequest } from './scim-error.js';

// Filters are parsed (filter-parse.ts, under a complexity budget) into disjunctive normal form: an
// array of AND-terms, each a tree of conditions keyed by attribute name. Matching is done here, not
// with scimmy's Filter.match(), because that compares strings case-sensitively and ignores caseExact.

export interface FilterNode {
  [attribute: string]: Comparison | Comparison[] | FilterNode;
}
/** OR of AND-terms. */
export type Filter = FilterNode[];

const CORE_PREFIXES = [
  'urn:ietf:params:scim:schemas:core:2.0:user:',
  'urn:ietf:params:scim:schemas:core:2.0:group:',
];
const ORDERING = new Set(['gt', 'ge', 'lt', 'le']);
export const MAX_FILTER_LENGTH = 2000;

export interface FilterOptions {
  /**
   * Canonical attribute names whose string values are uniqueness keys kept in Unicode NFC (userName,
   * a group's displayName): their comparison values are normalised the same way, so that a filter
   * typed in NFD finds the resource.
   */
  nfc?: readonly string[];
}

/**
 * @param catalog canonical top-level attribute names that may be filtered on (extension URNs included)
 */
export function parseFilter(
  expression: string,
  catalog: readonly string[],
  options: FilterOptions = {},
): Filter {
  if (expression.length > MAX_FILTER_LENGTH) {
    throw badRequest('invalidFilter', `filter is longer than ${MAX_FILTER_LENGTH} characters`);
  }
  const byLower = new Map(catalog.map((name) => [name.toLowerCase(), name]));
  const nfc = new Set(options.nfc ?? []);
  return filterToDnf(expression).map((term) => {
    const out: FilterNode = {};
    for (const literal of term) {
      const [rawName, ...rest] = literal.path;
      const keys = topLevelKeys(rawName, byLower, catalog);
      if ('comparison' in literal) {
        const comparison = nfc.has(keys[0]) ? toNfc(literal.comparison) : literal.comparison;
        setComparison(out, [...keys, ...rest], comparison, literal.path.join('.'));
      } else {
        addValueFilter(out, [...keys, ...rest], literal.valueFilter, literal.path.join('.'));
      }
    }
    return out;
  });
}

/** The attribute's keys in the resource: `[userName]`, or `[<extension URN>, department]`. */
function topLevelKeys(rawName: string, byLower: Map<string, string>, catalog: readonly string[]): string[] {
  const name = canonicalName(rawName, byLower);
  if (name) return [name];
  // `urn:…:enterprise:2.0:User:department` arrives as one name: nest it under its schema.
  const extension = extensionPath(rawName, catalog);
  if (!extension) {
    throw badRequest(
      'invalidFilter',
      `unknown attribute '${rawName}' in filter; filterable attributes: ${catalog.join(', ')}`,
    );
  }
  const [urn, subPath] = extension;
  return [urn, ...subPath.split('.')];
}

function toNfc(comparison: Comparison): Comparison {
  return comparison.map((part, i) => (i > 0 && typeof part === 'string' ? part.normalize('NFC') : part));
}

/** The node at `keys`, made on the way; a comparison already there is a conflict. */
function nodeAt(root: FilterNode, keys: string[], shown: string): FilterNode {
  let node = root;
  for (const key of keys) {
    if (node[key] === undefined) node[key] = {};
    if (Array.isArray(node[key])) throw conflict(shown);
    node = node[key] as FilterNode;
  }
  return node;
}

function setComparison(root: FilterNode, keys: string[], comparison: Comparison, shown: string): void {
  checkComparison(comparison, shown);
  const node = nodeAt(root, keys.slice(0, -1), shown);
  const leaf = keys[keys.length - 1];
  const existing = node[leaf];
  if (existing === undefined) node[leaf] = comparison;
  else if (!Array.isArray(existing)) throw conflict(shown);
  else if (Array.isArray(existing[0])) (existing as Comparison[]).push(comparison);
  else node[leaf] = [existing as Comparison, comparison];
}

/** `emails[type eq "work" and value co "x"]`: the conditions nest under `emails`, bound to one element. */
function addValueFilter(root: FilterNode, keys: string[], literals: Literal[], shown: string): void {
  const node = nodeAt(root, keys, shown);
  for (const literal of literals) {
    const path = literal.path;
    if ('comparison' in literal) setComparison(node, path, literal.comparison, `${shown}.${path.join('.')}`);
    else addValueFilter(node, path, literal.valueFilter, `${shown}.${path.join('.')}`);
  }
}

function conflict(shown: string) {
  return badRequest(
    'invalidFilter',
    `filter compares '${shown}' both as a whole and by its sub-attributes in one AND-term; that is not supported`,
  );
}

function checkComparison(comparison: Comparison, name: string): void {
  const [op, value] = comparison[0] === 'not' ? comparison.slice(1) : comparison;
  if (ORDERING.has(op as string) && (typeof value === 'boolean' || value === null)) {
    throw badRequest(
      'invalidFilter',
      `operator '${String(op)}' cannot compare '${name}' with ${String(value)}`,
    );
  }
}

/** `urn:…:User:sub.attr` → [catalog URN, 'sub.attr'] when the URN is a filterable extension. */
function extensionPath(raw: string, catalog: readonly string[]): [string, string] | undefined {
  const lower = raw.toLowerCase();
  const urn = catalog.find((name) => name.startsWith('urn:') && lower.startsWith(`${name.toLowerCase()}:`));
  if (!urn) return undefined;
  const subPath = raw.slice(urn.length + 1);
  return subPath ? [urn, subPath] : undefined;
}

function canonicalName(raw: string, byLower: Map<string, string>): string | undefined {
  let lower = raw.toLowerCase();
  for (const prefix of CORE_PREFIXES) if (lower.startsWith(prefix)) lower = lower.slice(prefix.length);
  return byLower.get(lower);
}

export function matchesFilter(
  filter: Filter,
  resource: Record<string, unknown>,
  caseExact: ReadonlySet<string>,
): boolean {
  return filter.some((term) => matchesNode(term, resource, caseExact));
}

function getIgnoringCase(target: unknown, name: string): unknown {
  if (target === null || typeof target !== 'object' || Array.isArray(target)) return undefined;
  const record = target as Record<string, unknown>;
  if (name in record) return record[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(record)) if (key.toLowerCase() === lower) return record[key];
  return undefined;
}

function matchesNode(node: FilterNode, target: unknown, caseExact: ReadonlySet<string>): boolean {
  return Object.entries(node).every(([name, condition]) => {
    const value = getIgnoringCase(target, name);
    if (!Array.isArray(condition)) {
      // Value path / sub-attribute: all nested conditions must hold on the same element.
      const elements = Array.isArray(value) ? value : value === undefined ? [] : [value];
      if (elements.length === 0) return matchesNode(condition, {}, caseExact);
      return elements.some((element) => matchesNode(condition, element, caseExact));
    }
    const comparisons = Array.isArray(condition[0]) ? (condition as Comparison[]) : [condition as Comparison];
    return comparisons.every((c) => compare(c, value, caseExact.has(name.toLowerCase())));
  });
}

function compare(comparison: Comparison, actual: unknown, exact: boolean): boolean {
  if (comparison[0] === 'not') return !compare(comparison.slice(1), actual, exact);
  const [op, expected] = comparison as [string, unknown];
  const present = (v: unknown) =>
    v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0);
  if (op === 'pr') return present(actual);
  if (op === 'np') return !present(actual);
  // A multi-valued attribute matches when any value does; complex values compare by `value`.
  const values = (Array.isArray(actual) ? actual : [actual]).map((v) =>
    v !== null && typeof v === 'object' ? (v as Record<string, unknown>).value : v,
  );
  if (op === 'ne') return !values.some((v) => compareOne('eq', v, expected, exact));
  return values.some((v) => compareOne(op, v, expected, exact));
}

function compareOne(op: string, actual: unknown, expected: unknown, exact: boolean): boolean {
  if (actual === undefined || actual === null) return false;
  if (typeof expected === 'boolean' || typeof actual === 'boolean') {
    return op === 'eq' && String(actual).toLowerCase() === String(expected).toLowerCase();
  }
  if (typeof expected === 'number' && typeof actual === 'number') {
    return ordered(op, actual - expected);
  }
  const a = exact ? String(actual) : String(actual).toLowerCase();
  const e = exact ? String(expected) : String(expected).toLowerCase();
  switch (op) {
    case 'eq':
      return a === e;
    case 'co':
      return a.includes(e);
    case 'sw':
      return a.startsWith(e);
    case 'ew':
      return a.endsWith(e);
    default:
      return ordered(op, a < e ? -1 : a > e ? 1 : 0);
  }
}

function ordered(op: string, diff: number): boolean {
  if (op === 'gt') return diff > 0;
  if (op === 'ge') return diff >= 0;
  if (op === 'lt') return diff < 0;
  if (op === 'le') return diff <= 0;
  return op === 'eq' && diff === 0;
}

/** An `attr eq "string"` condition at the top of an AND-term: the index lookups the planner uses. */
export function equalityAnchor(term: FilterNode, attribute: string): string | undefined {
  const condition = term[attribute];
  if (!Array.isArray(condition) || Array.isArray(condition[0])) return undefined;
  const [op, value] = condition as Comparison;
  return op === 'eq' && typeof value === 'string' ? value : undefined;
}
