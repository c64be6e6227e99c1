import SCIMMY from 'scimmy';
import { badRequest, requestDetail } from './errors.js';

// Filters are parsed by scimmy into disjunctive normal form (an array of AND-terms). Two of its
// quirks are corrected here: attribute names are only partly case-normalised, and unquoted
// capitalised booleans (`active eq True`) parse as false. Matching is done here, not with
// scimmy's Filter.match(), because that compares strings case-sensitively and ignores caseExact.

type Comparison = unknown[];
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
const OPERATORS = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le', 'pr', 'np']);

/**
 * @param catalog canonical top-level attribute names that may be filtered on (extension URNs included)
 * @param caseExact canonical names (lower-case) whose string values compare case-sensitively
 */
export function parseFilter(expression: string, catalog: readonly string[]): Filter {
  if (expression.length > 2000) throw badRequest('invalidFilter', 'filter is longer than 2000 characters');
  let parsed: FilterNode[];
  try {
    parsed = new SCIMMY.Types.Filter(lowercaseBareLiterals(expression)) as unknown as FilterNode[];
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const detail = requestDetail(message, 'it is not an expression of the form attribute operator value');
    throw badRequest('invalidFilter', `invalid filter '${expression}': ${detail}`);
  }
  if (DANGLING_LOGICAL.test(stripQuoted(expression))) {
    throw badRequest('invalidFilter', `invalid filter '${expression}': it ends with a logical operator`);
  }
  const byLower = new Map(catalog.map((name) => [name.toLowerCase(), name]));
  return parsed.map((term) => {
    const out: FilterNode = {};
    for (const [rawName, condition] of Object.entries(term)) {
      validateCondition(rawName, condition);
      const name = canonicalName(rawName, byLower);
      if (name) {
        out[name] = condition;
        continue;
      }
      // `urn:…:enterprise:2.0:User:department` arrives as one flat key: nest it under its schema.
      const extension = extensionPath(rawName, catalog);
      if (!extension) {
        throw badRequest(
          'invalidFilter',
          `unknown attribute '${rawName}' in filter; filterable attributes: ${catalog.join(', ')}`,
        );
      }
      const [urn, subPath] = extension;
      const parts = subPath.split('.');
      let node = out;
      for (const part of [urn, ...parts.slice(0, -1)]) {
        if (node[part] === undefined) node[part] = {};
        node = node[part] as FilterNode;
      }
      node[parts[parts.length - 1]] = condition;
    }
    return out;
  });
}

const DANGLING_LOGICAL = /(^|\s)(and|or|not)\s*$/i;

function stripQuoted(expression: string): string {
  return expression.replace(/"(?:[^"\\]|\\.)*"/g, '""');
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

function validateCondition(name: string, condition: Comparison | Comparison[] | FilterNode): void {
  if (!Array.isArray(condition)) {
    for (const [sub, nested] of Object.entries(condition)) validateCondition(`${name}.${sub}`, nested);
    return;
  }
  const comparisons = Array.isArray(condition[0]) ? (condition as Comparison[]) : [condition as Comparison];
  for (const comparison of comparisons) {
    const [op, value] = comparison[0] === 'not' ? comparison.slice(1) : comparison;
    if (typeof op !== 'string' || !OPERATORS.has(op)) {
      throw badRequest('invalidFilter', `unsupported operator '${String(op)}' on '${name}'`);
    }
    if (op !== 'pr' && op !== 'np' && comparison.length < (comparison[0] === 'not' ? 3 : 2)) {
      throw badRequest('invalidFilter', `operator '${op}' on '${name}' needs a value`);
    }
    if (ORDERING.has(op) && (typeof value === 'boolean' || value === null)) {
      throw badRequest('invalidFilter', `operator '${op}' cannot compare '${name}' with ${String(value)}`);
    }
  }
}

/** `active eq True` → `active eq true`, leaving quoted strings untouched. */
function lowercaseBareLiterals(expression: string): string {
  return expression
    .split(/("(?:[^"\\]|\\.)*")/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/\b(true|false|null)\b/gi, (m) => m.toLowerCase())))
    .join('');
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
