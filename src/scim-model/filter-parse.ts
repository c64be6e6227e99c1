import { badRequest } from './scim-error.js';

// A SCIM filter (RFC 7644 §3.4.2.2) → a syntax tree → disjunctive normal form, under a budget.
//
// The planners downstream want DNF (an OR of AND-terms: each term may carry an index lookup), but
// DNF can be exponentially larger than the filter: `(a or b) and (c or d) and …` doubles with every
// group. So the size of the DNF is computed arithmetically on the tree first (OR adds, AND
// multiplies, saturating), and a filter past the budget is refused before anything is expanded.
// Nesting is capped too, so the recursive descent never gets near the stack limit. Every step is
// linear in the filter's length or bounded by the budget: no filter up to the length limit can
// hold the event loop for long.

/** Parentheses, brackets and `not` nested deeper than this are refused. */
export const MAX_FILTER_DEPTH = 16;
/** At most this many AND-terms after distributing AND over OR (each may cost an upstream lookup). */
export const MAX_FILTER_TERMS = 100;
/** At most this many comparisons in all terms together (each is evaluated per candidate). */
export const MAX_FILTER_COMPARISONS = 1000;

export type Comparison = unknown[];

/** A comparison on an attribute path, or a value filter (`emails[type eq "work"]`) on one. */
export type Literal = { path: string[]; comparison: Comparison } | { path: string[]; valueFilter: Literal[] };

type Expr =
  | { t: 'or' | 'and'; items: Expr[] }
  | { t: 'not'; item: Expr }
  | { t: 'cmp'; path: string[]; comparison: Comparison }
  | { t: 'vp'; path: string[]; filter: Expr };

type Token =
  | { kind: '(' | ')' | '[' | ']'; at: number }
  | { kind: 'string'; value: string; at: number }
  | { kind: 'word'; value: string; at: number };

const OPERATORS = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le', 'pr', 'np']);
const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?$/;
const WORD_CHAR = /[A-Za-z0-9_$:.\-+%/]/;

const tooComplex = (why: string) => badRequest('invalidFilter', `filter is too complex: ${why}`);

/** The filter as an OR of AND-terms of literals, or a 400 invalidFilter naming the problem. */
export function filterToDnf(expression: string): Literal[][] {
  const tokens = tokenise(expression);
  const parser = new Parser(tokens, expression);
  const tree = parser.parse();
  const normal = negationNormalForm(tree, false);
  const terms = dnfSize(normal);
  if (terms > MAX_FILTER_TERMS) {
    throw tooComplex(
      `it expands to more than ${MAX_FILTER_TERMS} alternatives (OR-branches once AND is distributed over OR); split it into several requests`,
    );
  }
  const dnf = expand(normal);
  const comparisons = dnf.reduce((n, term) => n + countLiterals(term), 0);
  if (comparisons > MAX_FILTER_COMPARISONS) {
    throw tooComplex(
      `it expands to more than ${MAX_FILTER_COMPARISONS} comparisons once AND is distributed over OR`,
    );
  }
  return dnf;
}

function tokenise(expression: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expression.length) {
    const c = expression[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')' || c === '[' || c === ']') {
      tokens.push({ kind: c, at: i });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < expression.length && expression[j] !== '"') j += expression[j] === '\\' ? 2 : 1;
      if (j >= expression.length) {
        throw badRequest(
          'invalidFilter',
          `invalid filter: the string starting at character ${i + 1} is not closed`,
        );
      }
      let value: string;
      try {
        value = JSON.parse(expression.slice(i, j + 1)) as string;
      } catch {
        throw badRequest('invalidFilter', `invalid filter: bad escape in the string at character ${i + 1}`);
      }
      tokens.push({ kind: 'string', value, at: i });
      i = j + 1;
    } else if (WORD_CHAR.test(c)) {
      let j = i;
      while (j < expression.length && WORD_CHAR.test(expression[j])) j++;
      tokens.push({ kind: 'word', value: expression.slice(i, j), at: i });
      i = j;
    } else {
      throw badRequest('invalidFilter', `invalid filter: unexpected character '${c}' at character ${i + 1}`);
    }
  }
  return tokens;
}

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly expression: string,
  ) {}

  parse(): Expr {
    if (this.tokens.length === 0) throw this.invalid('it is empty');
    const tree = this.or(0);
    const rest = this.tokens[this.i];
    if (rest) throw this.invalid(`unexpected ${describe(rest)} at character ${rest.at + 1}`);
    return tree;
  }

  private invalid(why: string) {
    return badRequest('invalidFilter', `invalid filter '${this.expression}': ${why}`);
  }

  private peekWord(word: string): boolean {
    const t = this.tokens[this.i];
    return t?.kind === 'word' && t.value.toLowerCase() === word;
  }

  private expect(kind: ')' | ']'): void {
    const t = this.tokens[this.i];
    if (t?.kind !== kind) {
      throw this.invalid(
        t ? `expected '${kind}' at character ${t.at + 1}` : `a '${kind}' is missing at the end`,
      );
    }
    this.i++;
  }

  private or(depth: number): Expr {
    const items = [this.and(depth)];
    while (this.peekWord('or')) {
      this.i++;
      items.push(this.and(depth));
    }
    return items.length === 1 ? items[0] : { t: 'or', items };
  }

  private and(depth: number): Expr {
    const items = [this.unary(depth)];
    while (this.peekWord('and')) {
      this.i++;
      items.push(this.unary(depth));
    }
    return items.length === 1 ? items[0] : { t: 'and', items };
  }

  private nested(depth: number): number {
    if (depth + 1 > MAX_FILTER_DEPTH) {
      throw tooComplex(`parentheses, brackets and 'not' nest deeper than ${MAX_FILTER_DEPTH} levels`);
    }
    return depth + 1;
  }

  private unary(depth: number): Expr {
    const t = this.tokens[this.i];
    if (!t) throw this.invalid('it ends with a logical operator');
    if (t.kind === 'word' && t.value.toLowerCase() === 'not') {
      this.i++;
      return { t: 'not', item: this.unary(this.nested(depth)) };
    }
    if (t.kind === '(') {
      this.i++;
      const inner = this.or(this.nested(depth));
      this.expect(')');
      return inner;
    }
    return this.attributeExpression(depth);
  }

  private attributeExpression(depth: number): Expr {
    const t = this.tokens[this.i];
    if (t?.kind !== 'word' || OPERATORS.has(t.value.toLowerCase()) || /^(and|or)$/i.test(t.value)) {
      throw this.invalid(
        t ? `expected an attribute name at character ${t.at + 1}, found ${describe(t)}` : 'it ends too early',
      );
    }
    this.i++;
    const path = splitPath(t.value);
    if (this.tokens[this.i]?.kind === '[') {
      this.i++;
      const inner = this.or(this.nested(depth));
      this.expect(']');
      // `emails[type eq "work"].value eq "x"`: a comparison on a sub-attribute of the same element.
      const next = this.tokens[this.i];
      if (next?.kind === 'word' && next.value.startsWith('.') && next.value.length > 1) {
        this.i++;
        const comparison = this.comparison(`${t.value}[…]${next.value}`);
        const sub: Expr = { t: 'cmp', path: next.value.slice(1).split('.'), comparison };
        return { t: 'vp', path, filter: { t: 'and', items: [inner, sub] } };
      }
      return { t: 'vp', path, filter: inner };
    }
    return { t: 'cmp', path, comparison: this.comparison(t.value) };
  }

  private comparison(attribute: string): Comparison {
    const op = this.tokens[this.i];
    if (op?.kind !== 'word' || !OPERATORS.has(op.value.toLowerCase())) {
      throw this.invalid(
        op
          ? `unsupported operator ${describe(op)} after '${attribute}'`
          : `'${attribute}' needs an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)`,
      );
    }
    this.i++;
    const operator = op.value.toLowerCase();
    if (operator === 'pr' || operator === 'np') return [operator];
    const v = this.tokens[this.i];
    if (!v || (v.kind !== 'string' && v.kind !== 'word')) {
      throw badRequest('invalidFilter', `operator '${operator}' on '${attribute}' needs a value`);
    }
    this.i++;
    if (v.kind === 'string') return [operator, v.value];
    const lower = v.value.toLowerCase();
    if (lower === 'true' || lower === 'false') return [operator, lower === 'true'];
    if (lower === 'null') return [operator, null];
    if (NUMBER.test(v.value)) return [operator, Number(v.value)];
    // Microsoft's own examples leave string values unquoted (`externalId eq 12345-ab`).
    return [operator, v.value];
  }
}

function describe(t: Token): string {
  if (t.kind === 'word') return `'${t.value}'`;
  if (t.kind === 'string') return 'a string';
  return `'${t.kind}'`;
}

/** `name.familyName` → [name, familyName]; an URN keeps its dots (`…:2.0:User:manager.value`). */
function splitPath(word: string): string[] {
  const colon = word.lastIndexOf(':');
  const [first, ...rest] = word.slice(colon + 1).split('.');
  return [word.slice(0, colon + 1) + first, ...rest];
}

/** `not` pushed down to the comparisons (De Morgan), so that DNF needs no negated groups. */
function negationNormalForm(e: Expr, negate: boolean): Expr {
  switch (e.t) {
    case 'not':
      return negationNormalForm(e.item, !negate);
    case 'and':
    case 'or': {
      const t = negate ? (e.t === 'and' ? 'or' : 'and') : e.t;
      return { t, items: e.items.map((item) => negationNormalForm(item, negate)) };
    }
    case 'cmp':
      return negate ? { ...e, comparison: ['not', ...e.comparison] } : e;
    case 'vp':
      if (negate) {
        throw badRequest(
          'invalidFilter',
          `'not' around the value filter on '${e.path.join('.')}' is not supported; negate the comparisons inside the brackets`,
        );
      }
      return { ...e, filter: negationNormalForm(e.filter, false) };
  }
}

/** The number of AND-terms DNF would have, saturating just past the budget (no big numbers). */
function dnfSize(e: Expr): number {
  const cap = MAX_FILTER_TERMS + 1;
  switch (e.t) {
    case 'cmp':
      return 1;
    case 'vp':
      return dnfSize(e.filter);
    case 'or':
      return Math.min(
        cap,
        e.items.reduce((n, item) => n + dnfSize(item), 0),
      );
    case 'and':
      return e.items.reduce((n, item) => Math.min(cap, n * dnfSize(item)), 1);
    default:
      return cap;
  }
}

/** DNF of a tree in negation normal form whose dnfSize is within the budget. */
function expand(e: Expr): Literal[][] {
  switch (e.t) {
    case 'cmp':
      return [[{ path: e.path, comparison: e.comparison }]];
    case 'vp':
      // `emails[a or b]` is `emails[a] or emails[b]`: each branch binds to one element.
      return expand(e.filter).map((term) => [{ path: e.path, valueFilter: term }]);
    case 'or':
      return e.items.flatMap(expand);
    case 'and':
      return e.items.reduce<Literal[][]>(
        (terms, item) => {
          const right = expand(item);
          return terms.flatMap((left) => right.map((r) => [...left, ...r]));
        },
        [[]],
      );
    default:
      return [];
  }
}

function countLiterals(term: Literal[]): number {
  return term.reduce((n, l) => n + ('comparison' in l ? 1 : countLiterals(l.valueFilter)), 0);
}
