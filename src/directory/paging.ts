// Listing over CloudIdentity's PageNumber/PageSize lists and filtered lists, shared by users and groups.
import { type Filter, matchesFilter } from '../scim/filter.js';
import { mapLimit } from '../volcengine/concurrency.js';

/** CloudIdentity's largest PageSize. */
export const UPSTREAM_PAGE = 100;
/**
 * The largest PageNumber asked of CloudIdentity (a 32-bit integer is what any API takes). A page
 * past it starts beyond any directory (2^31 pages), so only the total is asked for.
 */
const MAX_PAGE_NUMBER = 2 ** 31 - 1;

/**
 * Items start..end (1-based, inclusive) of an upstream list with the fewest calls: one whenever some
 * page size ≤ 100 holds the whole range in one page. The first page's answer carries the upstream
 * Total, so pages past the end are never asked for, and no separate count call is needed.
 */
export async function upstreamSlice<T>(
  start: number,
  end: number,
  fetchPage: (pageNumber: number, pageSize: number) => Promise<{ Total: number; items: T[] }>,
  parallelism = 8,
): Promise<{ items: T[]; total: number }> {
  const count = end - start + 1;
  let pageSize = UPSTREAM_PAGE;
  for (let size = Math.min(UPSTREAM_PAGE, Math.max(count, 1)); size <= UPSTREAM_PAGE; size++) {
    if (Math.floor((start - 1) / size) === Math.floor((end - 1) / size)) {
      pageSize = size;
      break;
    }
  }
  const firstPage = Math.floor((start - 1) / pageSize) + 1;
  if (!(firstPage <= MAX_PAGE_NUMBER)) {
    // startIndex=1e300 and the like: an empty page, with the real total.
    return { items: [], total: (await fetchPage(1, 1)).Total };
  }
  const lastPage = Math.floor((end - 1) / pageSize) + 1;
  const first = await fetchPage(firstPage, pageSize);
  const last = Math.min(lastPage, Math.max(firstPage, Math.ceil(first.Total / pageSize)));
  const rest = await mapLimit(
    Array.from({ length: last - firstPage }, (_, i) => firstPage + 1 + i),
    parallelism,
    (page) => fetchPage(page, pageSize),
  );
  const items = [first, ...rest].flatMap((p) => p.items);
  const offset = start - 1 - (firstPage - 1) * pageSize;
  return { items: items.slice(offset, offset + count), total: first.Total };
}

/**
 * A filtered list: the union of each OR-branch's index candidates (or, when some branch has no
 * index lookup, a bounded scan of everything), then the whole filter evaluated on the SCIM form of
 * each candidate, then the requested slice. Shared by users and groups.
 */
export async function filterAndSlice<V extends { scimId: string }>(opts: {
  filter: Filter;
  startIndex: number;
  count: number;
  anchored: (term: Filter[number]) => Promise<V[] | undefined>;
  scanAll: () => Promise<V[]>;
  toResource: (view: V) => Record<string, unknown>;
  /** Another form a view also matches by (a user renamed upstream: under the store's userName). */
  alsoMatch?: (view: V) => Record<string, unknown> | undefined;
  caseExact: ReadonlySet<string>;
}): Promise<{ total: number; views: V[] }> {
  const candidates = new Map<string, V>();
  // A filter may have up to MAX_FILTER_TERMS OR-branches, each an index lookup: a few at a time.
  const anchored = await mapLimit(opts.filter, 8, (term) => opts.anchored(term));
  const pools = anchored.every((c) => c !== undefined) ? (anchored as V[][]) : [await opts.scanAll()];
  for (const views of pools) for (const v of views) candidates.set(v.scimId, v);
  const matches = [...candidates.values()].filter((view) => {
    if (matchesFilter(opts.filter, opts.toResource(view), opts.caseExact)) return true;
    const alternative = opts.alsoMatch?.(view);
    return alternative !== undefined && matchesFilter(opts.filter, alternative, opts.caseExact);
  });
  const start = Math.max(1, opts.startIndex);
  return { total: matches.length, views: matches.slice(start - 1, start - 1 + opts.count) };
}
