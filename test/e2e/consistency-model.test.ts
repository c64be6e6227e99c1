// Randomized model-based test of DESIGN.md §8 (issue 11): concurrent clients issue create / patch /
// deactivate / reactivate / delete / membership changes (and stale If-Match writes) while the
// emulator injects upstream faults (5xx, throttling, connections dropped before and after commit);
// then the faults are cleared, the reconciler runs until no intent is pending, and I1–I6 are checked.
// On the embedded store (one bridge) and on PostgreSQL with two bridges (clients spread over both).
// CONSISTENCY_RUNS=500 for a long run (default 12 per topology). The SIGKILL variant is a real
// process: consistency-crash.test.ts.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaultRule } from '../../src/emulator/types.js';
import type { Harness } from '../helpers/harness.js';
import { storeKinds } from '../helpers/harness.js';
import {
  createGroup,
  createUser,
  expectInvariants,
  memberPatch,
  setActive,
  startBridges,
  type Topology,
  topologies,
} from './consistency-support.js';
import { filterUrl, type LooseJson, patchBody, uniqueName, userBody } from './users-support.js';

const RUNS = Number(process.env.CONSISTENCY_RUNS ?? 12);
const USERS = 3;
const GROUPS = 2;
const kinds = await storeKinds();

type Op =
  | { op: 'title'; user: number }
  | { op: 'active'; user: number; active: boolean }
  | { op: 'delete'; user: number }
  | { op: 'member'; user: number; group: number; add: boolean }
  | { op: 'replace'; group: number; users: number[] }
  | { op: 'stale'; user: number }
  | { op: 'create' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('title' as const), user: fc.nat(USERS - 1) }),
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('active' as const),
      user: fc.nat(USERS - 1),
      active: fc.boolean(),
    }),
  },
  fc.record({ op: fc.constant('delete' as const), user: fc.nat(USERS - 1) }),
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('member' as const),
      user: fc.nat(USERS - 1),
      group: fc.nat(GROUPS - 1),
      add: fc.boolean(),
    }),
  },
  fc.record({
    op: fc.constant('replace' as const),
    group: fc.nat(GROUPS - 1),
    users: fc.uniqueArray(fc.nat(USERS - 1), { maxLength: USERS }),
  }),
  fc.record({ op: fc.constant('stale' as const), user: fc.nat(USERS - 1) }),
  fc.record({ op: fc.constant('create' as const) }),
);

const FAULTED = [
  'CreateUser',
  'DeleteUser',
  'UpdateUser',
  'AddUserToGroup',
  'RemoveUserFromGroup',
  'DeleteGroup',
  'GetUser',
  'ListGroupMembers',
] as const;
const faultArb: fc.Arbitrary<FaultRule> = fc.record({
  action: fc.constantFrom(...FAULTED),
  probability: fc.constantFrom(0.5, 1, 1),
  fault: fc.constantFrom('InternalError', 'ServiceUnavailableTemp', 'reset', 'commitThenReset' as const),
  // The client retries up to 4 attempts: a rule firing 4+ times in a row fails a call.
  times: fc.integer({ min: 2, max: 12 }),
}) as fc.Arbitrary<FaultRule>;

const scenarioArb = fc.record({
  /** One list of operations per concurrent client. */
  clients: fc.array(fc.array(opArb, { minLength: 2, maxLength: 6 }), { minLength: 2, maxLength: 4 }),
  faults: fc.array(faultArb, { minLength: 1, maxLength: 4 }),
});

const newStats = () => ({ runs: 0, operations: 0, faultsFired: 0, answers5xx: 0, intentsSettled: 0 });

async function faultsFired(h: Harness, rules: FaultRule[]): Promise<number> {
  const left = (await (await fetch(`${h.emulator.url}/_emulator/faults`)).json()) as FaultRule[];
  return rules.reduce((n, r, i) => n + ((r.times ?? 0) - (left[i]?.times ?? 0)), 0);
}

describe.each(topologies(kinds).filter((t) => t.store === 'embedded' || t.twoBridges))(
  'consistency model: random concurrent operations under faults ($name)',
  (t: Topology) => {
    const stats = newStats();
    let bridges: Awaited<ReturnType<typeof startBridges>>;
    beforeAll(async () => {
      bridges = await startBridges(t);
    });
    afterAll(async () => {
      await bridges?.close();
      console.info(`[consistency model, ${t.name}] ${JSON.stringify(stats)}`);
    });

    it(`holds I1–I6 after every run (${RUNS} runs)`, { timeout: 60_000 + RUNS * 20_000 }, async () => {
      const { a, b } = bridges;
      await fc.assert(
        fc.asyncProperty(scenarioArb, async (scenario) => {
          a.emulator.setFaults([]);
          // The world of this run: fresh users (all in group 0 at first) and groups.
          const users: Array<{ id: string; userName: string }> = [];
          for (let i = 0; i < USERS; i++) {
            const userName = uniqueName(`model${i}`);
            users.push({ id: await createUser(a, userName), userName });
          }
          const groups: string[] = [];
          for (let g = 0; g < GROUPS; g++) {
            groups.push(await createGroup(a, uniqueName(`model-g${g}`, 'g'), g === 0 ? [users[0].id] : []));
          }
          const created: string[] = [];
          const staleTitles = new Set<string>();
          const deleted = new Set<string>();
          a.emulator.setFaults(scenario.faults);

          const acknowledged: Array<Extract<Op, { op: 'member' }>> = [];
          const run = async (client: number, ops: Op[]) => {
            const h = client % 2 === 0 ? a : b;
            for (const op of ops) {
              const res = await perform(h, op, users, groups, created, staleTitles);
              stats.operations++;
              if (res >= 500) stats.answers5xx++;
              if (op.op === 'delete' && res === 204) deleted.add(users[op.user].id);
              if (op.op === 'member' && res === 204) acknowledged.push(op);
            }
          };
          await Promise.all(scenario.clients.map((ops, i) => run(i, ops)));

          stats.faultsFired += await faultsFired(a, scenario.faults);
          a.emulator.setFaults([]);
          const before = await a.store.countIntents();
          await a.settle();
          if (b !== a) await b.settle();
          stats.intentsSettled += before;
          stats.runs++;

          // I1, I2, I3, I5 for every user of the run (deleted ones included) and both groups.
          await expectInvariants(a, users, groups);
          if (b !== a) await expectInvariants(b, users, groups);
          // I4: an acknowledged DELETE stays deleted; acknowledged creates exist (once).
          for (const id of deleted)
            expect((await a.http.get(`/scim/v2/Users/${id}`)).status, `I4 ${id}`).toBe(404);
          for (const userName of created) {
            const found = await a.http.get(filterUrl(`userName eq "${userName}"`));
            expect(found.body.totalResults, `I4/I2 created ${userName}`).toBe(1);
          }
          // I4 for memberships: an acknowledged add/remove that no other operation of the run could
          // undo (the only one on that pair; no replace of that group, no delete of that user) holds.
          const all = scenario.clients.flat();
          const final = await a.upstream();
          for (const op of acknowledged) {
            const contested =
              all.filter((o) => o.op === 'member' && o.user === op.user && o.group === op.group).length > 1 ||
              all.some(
                (o) =>
                  (o.op === 'replace' && o.group === op.group) || (o.op === 'delete' && o.user === op.user),
              );
            if (contested) continue;
            const record = await a.store.getUser(users[op.user].id);
            if (!record?.upstreamUserId || !record.active) continue;
            const member = final.memberships.some(
              (m) => m.GroupId === groups[op.group] && m.UserId === record.upstreamUserId,
            );
            expect(member, `I4 acknowledged member ${op.add ? 'add' : 'remove'}`).toBe(op.add);
          }
          // I6: a write refused with 412 changed nothing.
          for (const u of users) {
            const res = await a.http.get(`/scim/v2/Users/${u.id}`);
            if (res.status === 200)
              expect(staleTitles.has((res.body as LooseJson).title as string), 'I6').toBe(false);
          }
          expect(await a.store.countIntents(), 'every intent settled').toBe(0);
        }),
        { numRuns: RUNS, endOnFailure: true },
      );
    });
  },
);

/** Runs one operation; returns the HTTP status. */
async function perform(
  h: Harness,
  op: Op,
  users: Array<{ id: string; userName: string }>,
  groups: string[],
  created: string[],
  staleTitles: Set<string>,
): Promise<number> {
  switch (op.op) {
    case 'title':
      return (
        await h.http
          .patch(`/scim/v2/Users/${users[op.user].id}`)
          .send(patchBody({ op: 'replace', path: 'title', value: `t-${Math.random()}` }))
      ).status;
    case 'active':
      return (await setActive(h, users[op.user].id, op.active)).status;
    case 'delete':
      return (await h.http.delete(`/scim/v2/Users/${users[op.user].id}`)).status;
    case 'member':
      return (await memberPatch(h, groups[op.group], op.add ? 'add' : 'remove', users[op.user].id)).status;
    case 'replace':
      return (
        await h.http.patch(`/scim/v2/Groups/${groups[op.group]}`).send(
          patchBody({
            op: 'replace',
            path: 'members',
            value: op.users.map((u) => ({ value: users[u].id })),
          }),
        )
      ).status;
    case 'stale': {
      const title = `stale-${Math.random()}`;
      staleTitles.add(title);
      const res = await h.http
        .patch(`/scim/v2/Users/${users[op.user].id}`)
        .set('If-Match', 'W/"0"')
        .send(patchBody({ op: 'replace', path: 'title', value: title }));
      expect(res.status === 404 || res.status === 412 || res.status >= 500, res.text).toBe(true);
      return res.status;
    }
    case 'create': {
      const userName = uniqueName('model-new');
      const res = await h.http.post('/scim/v2/Users').send(userBody(userName));
      if (res.status === 201) created.push(userName);
      return res.status;
    }
  }
}
