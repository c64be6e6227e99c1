import type { IncomingMessage, ServerResponse } from 'node:http';
import { groupToWire, userToWire } from './actions/wire.js';
import { type FaultInjector, InvalidFaultRulesError } from './faults.js';
import { send } from './gateway/envelope.js';
import { readBody } from './gateway/request.js';
import { type EmulatorState, nameKey } from './state.js';

export const CONTROL_PREFIX = '/_emulator/';

export interface ControlDeps {
  state: EmulatorState;
  faults: FaultInjector;
  calls: Map<string, number>;
  /** Clears data, faults and call counts. */
  reset(): void;
  /** The emulator's clock (CreatedTime of accounts made through the control API). */
  now?: () => number;
}

/**
 * Unsigned test-control API on the same port (bind the emulator to loopback: anyone who can reach it
 * can rewrite it). Plain JSON, no CloudIdentity envelope, no latency or faults.
 */
export async function handleControl(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  query: URLSearchParams,
  deps: ControlDeps,
): Promise<void> {
  const method = req.method ?? 'GET';
  const route = path.slice(CONTROL_PREFIX.length);
  const allowed = ROUTES[route];
  if (!allowed) return sendJson(res, 404, { error: `no control endpoint ${path}` });
  if (!allowed.includes(method)) {
    return sendJson(
      res,
      405,
      { error: `${method} not allowed on ${path}; use ${allowed.join(' or ')}` },
      {
        Allow: allowed.join(', '),
      },
    );
  }

  switch (`${method} ${route}`) {
    case 'GET state':
      return sendJson(
        res,
        200,
        stateSnapshot(deps, query.get('summary') === '1' || query.get('summary') === 'true'),
      );
    case 'POST reset':
      deps.reset();
      return sendJson(res, 200, { ok: true });
    case 'POST users':
      return createAccount(req, res, deps);
    case 'GET faults':
      return sendJson(res, 200, deps.faults.list());
    case 'PUT faults': {
      let rules: unknown;
      try {
        const body = await readBody(req);
        rules = JSON.parse(body.toString('utf8'));
      } catch {
        return sendJson(res, 400, { error: 'body must be a JSON array of fault rules' });
      }
      try {
        deps.faults.set(rules);
      } catch (err) {
        if (err instanceof InvalidFaultRulesError) {
          return sendJson(res, 400, {
            error: `invalid fault rules: ${err.problems.join('; ')}`,
            problems: err.problems,
          });
        }
        throw err;
      }
      return sendJson(res, 200, deps.faults.list());
    }
  }
}

const ROUTES: Record<string, string[]> = {
  state: ['GET'],
  reset: ['POST'],
  faults: ['GET', 'PUT'],
  users: ['POST'],
};

/**
 * POST users {UserName, DisplayName?, Email?, Source?: 'Manual' | 'Sync'}: an account made the way
 * CloudIdentity's own console (Manual) or its own sync (Sync) would, as no SCIM client did; the
 * bridge maps no resource to it (an account "no IdP manages"). 201 with the account.
 */
async function createAccount(req: IncomingMessage, res: ServerResponse, deps: ControlDeps): Promise<void> {
  let body: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse((await readBody(req)).toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error();
    body = parsed as Record<string, unknown>;
  } catch {
    return sendJson(res, 400, {
      error: 'body must be a JSON object {UserName, DisplayName?, Email?, Source?}',
    });
  }
  const { UserName, DisplayName, Email, Source = 'Manual' } = body;
  const text = (v: unknown) => v === undefined || (typeof v === 'string' && v.length <= 128);
  if (typeof UserName !== 'string' || !/^[A-Za-z0-9._@-]{1,64}$/.test(UserName))
    return sendJson(res, 400, { error: 'UserName must be 1-64 characters of A-Z a-z 0-9 . _ @ -' });
  if (!text(DisplayName) || !text(Email))
    return sendJson(res, 400, { error: 'DisplayName and Email must be strings of at most 128 characters' });
  if (Source !== 'Manual' && Source !== 'Sync')
    return sendJson(res, 400, { error: "Source must be 'Manual' or 'Sync'" });
  if (deps.state.usersByName.has(nameKey(UserName)))
    return sendJson(res, 409, { error: `an account named ${UserName} exists` });
  const user = deps.state.createUser(
    { UserName, DisplayName: DisplayName as string | undefined, Email: Email as string | undefined },
    (deps.now ?? Date.now)(),
    Source,
  );
  return sendJson(res, 201, userToWire(user, true));
}

function stateSnapshot(deps: ControlDeps, summary: boolean): object {
  const { state } = deps;
  const calls = Object.fromEntries(deps.calls);
  if (summary) {
    // Counts only: a full dump of 100k users is tens of megabytes.
    return {
      userCount: state.users.size,
      groupCount: state.groups.size,
      membershipCount: state.membershipCount,
      calls,
    };
  }
  const memberships: { GroupId: string; UserId: string }[] = [];
  for (const g of state.groups.values()) {
    for (const m of g.members.values()) memberships.push({ GroupId: g.GroupId, UserId: m.user.UserId });
  }
  return {
    users: Array.from(state.users.values(), (u) => userToWire(u, true)),
    groups: Array.from(state.groups.values(), groupToWire),
    memberships,
    calls,
  };
}

function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers?: Record<string, string>,
): void {
  send(res, status, JSON.stringify(value), headers);
}
