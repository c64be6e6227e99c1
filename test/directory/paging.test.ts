import { describe, expect, it } from 'vitest';
import { filterAndSlice, UPSTREAM_PAGE, upstreamSlice } from '../../src/directory/paging.js';
import { equalityAnchor, type Filter, parseFilter } from '../../src/scim/filter.js';

/** A CloudIdentity-like list of `n` items answering PageNumber/PageSize, recording each call. */
function upstreamList(n: number) {
  const items = Array.from({ length: n }, (_, i) => `item-${i + 1}`);
  const calls: Array<[number, number]> = [];
  const fetchPage = async (pageNumber: number, pageSize: number) => {
    expect(pageSize).toBeGreaterThanOrEqual(1);
    expect(pageSize).toBeLessThanOrEqual(UPSTREAM_PAGE);
    calls.push([pageNumber, pageSize]);
    const from = (pageNumber - 1) * pageSize;
    return { Total: n, items: items.slice(from, from + pageSize) };
  };
  return { items, calls, fetchPage };
}

describe('upstreamSlice', () => {
  it('returns exactly items start..end and the upstream total, for every start and count', async () => {
    for (const n of [0, 1, 99, 100, 101, 250]) {
      for (const start of [1, 2, 50, 99, 100, 101, 150, 199, 200, 201, 249, 250, 251, 400]) {
        for (const count of [0, 1, 7, 100, 101, 150, 300]) {
          const list = upstreamList(n);
          const slice = await upstreamSlice(start, start + count - 1, list.fetchPage);
          expect(slice.total, `n=${n} start=${start} count=${count}`).toBe(n);
          expect(slice.items, `n=${n} start=${start} count=${count}`).toEqual(
            list.items.slice(start - 1, start - 1 + count),
          );
        }
      }
    }
  });

  it('makes one call whenever some page size of at most 100 holds the whole range', async () => {
    const cases: Array<[number, number]> = [
      [1, 10],
      [11, 20],
      [95, 105],
      [201, 300],
      [1, 100],
    ];
    for (const [start, end] of cases) {
      const list = upstreamList(1_000);
      await upstreamSlice(start, end, list.fetchPage);
      expect(list.calls, `${start}..${end}`).toHaveLength(1);
    }
    // 151..250 straddles every page of 100 or fewer items: two pages of 100.
    const list = upstreamList(1_000);
    await upstreamSlice(151, 250, list.fetchPage);
    expect(list.calls).toEqual([
      [2, 100],
      [3, 100],
    ]);
  });

  it('never asks for pages past the upstream total', async () => {
    const list = upstreamList(230);
    const slice = await upstreamSlice(1, 1_000, list.fetchPage);
    expect(slice.items).toHaveLength(230);
    expect(list.calls.map(([page]) => page)).toEqual([1, 2, 3]);
    expect(list.calls.every(([, size]) => size === UPSTREAM_PAGE)).toBe(true);
  });

  it('a start beyond any page number asks only for the total', async () => {
    const list = upstreamList(42);
    const slice = await upstreamSlice(1e300, 1e300 + 9, list.fetchPage);
    expect(slice).toEqual({ items: [], total: 42 });
    expect(list.calls).toEqual([[1, 1]]);
  });

  it('keeps at most `parallelism` page reads in flight', async () => {
    const items = Array.from({ length: 2_000 }, (_, i) => i);
    let inFlight = 0;
    let most = 0;
    const slice = await upstreamSlice(
      1,
      2_000,
      async (pageNumber, pageSize) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight--;
        const from = (pageNumber - 1) * pageSize;
        return { Total: items.length, items: items.slice(from, from + pageSize) };
      },
      3,
    );
    expect(slice.items).toEqual(items);
    expect(most).toBe(3);
  });
});

interface View {
  scimId: string;
  userName: string;
  externalId?: string;
  title?: string;
  /** A second name the view also matches by (the store's, for a user renamed upstream). */
  provisioned?: string;
}

const CATALOG = ['id', 'userName', 'externalId', 'title'];
const PEOPLE: View[] = [
  { scimId: 'u1', userName: 'alice', externalId: 'A-1', title: 'engineer' },
  { scimId: 'u2', userName: 'bob', externalId: 'B-2', title: 'engineer' },
  { scimId: 'u3', userName: 'carol', externalId: 'C-3', title: 'manager' },
  { scimId: 'u4', userName: 'dave-renamed', externalId: 'D-4', title: 'engineer', provisioned: 'dave' },
];

/** filterAndSlice over PEOPLE with userName/id lookups as the only indexes, recording what it used. */
async function run(expression: string, startIndex = 1, count = 100) {
  const used = { anchored: [] as string[], scans: 0 };
  const filter: Filter = parseFilter(expression, CATALOG);
  const result = await filterAndSlice<View>({
    filter,
    startIndex,
    count,
    anchored: async (term) => {
      const userName = equalityAnchor(term, 'userName');
      if (userName !== undefined) {
        used.anchored.push(userName);
        const wanted = userName.toLowerCase();
        return PEOPLE.filter((p) => p.userName === wanted || p.provisioned === wanted);
      }
      const id = equalityAnchor(term, 'id');
      if (id !== undefined) {
        used.anchored.push(id);
        return PEOPLE.filter((p) => p.scimId === id);
      }
      return undefined;
    },
    scanAll: async () => {
      used.scans++;
      return PEOPLE;
    },
    toResource: (v) => ({ id: v.scimId, userName: v.userName, externalId: v.externalId, title: v.title }),
    alsoMatch: (v) =>
      v.provisioned
        ? { id: v.scimId, userName: v.provisioned, externalId: v.externalId, title: v.title }
        : undefined,
    caseExact: new Set(['id', 'externalid']),
  });
  return { ids: result.views.map((v) => v.scimId), total: result.total, used };
}

describe('filterAndSlice', () => {
  it('answers an equality on an indexed attribute from the index alone, in any case', async () => {
    const r = await run('userName eq "ALICE"');
    expect(r).toMatchObject({ ids: ['u1'], total: 1, used: { anchored: ['ALICE'], scans: 0 } });
  });

  it('checks the whole filter on the index candidates: an AND term it does not match excludes one', async () => {
    expect((await run('userName eq "alice" and title eq "manager"')).ids).toEqual([]);
    expect((await run('userName eq "alice" and title eq "engineer"')).ids).toEqual(['u1']);
  });

  it('unites the candidates of every OR branch, each resource once', async () => {
    const r = await run('userName eq "alice" or id eq "u1" or userName eq "carol"');
    expect(r.ids.sort()).toEqual(['u1', 'u3']);
    expect(r.total).toBe(2);
    expect(r.used.scans).toBe(0);
  });

  it('scans once when some OR branch has no index lookup', async () => {
    const r = await run('userName eq "alice" or title eq "manager"');
    expect(r.ids.sort()).toEqual(['u1', 'u3']);
    expect(r.used.scans).toBe(1);
  });

  it('compares caseExact attributes exactly and the others in any case', async () => {
    expect((await run('externalId eq "a-1"')).ids).toEqual([]);
    expect((await run('externalId eq "A-1"')).ids).toEqual(['u1']);
    expect((await run('title eq "ENGINEER"')).total).toBe(3);
  });

  it('finds a view by its other form (a user renamed upstream, by the name the IdP provisioned)', async () => {
    expect((await run('userName eq "dave"')).ids).toEqual(['u4']);
    expect((await run('userName eq "dave-renamed"')).ids).toEqual(['u4']);
  });

  it('returns the requested slice of the matches, with the total of all matches', async () => {
    const all = await run('title eq "engineer"');
    expect(all.total).toBe(3);
    const second = await run('title eq "engineer"', 2, 1);
    expect(second).toMatchObject({ ids: [all.ids[1]], total: 3 });
    expect((await run('title eq "engineer"', 0, 2)).ids).toEqual(all.ids.slice(0, 2));
    expect((await run('title eq "engineer"', 10, 5)).ids).toEqual([]);
    expect((await run('title eq "engineer"', 1, 0)).ids).toEqual([]);
  });
});
