import type { IncomingMessage, ServerResponse } from 'node:http';
import { groupToWire, userToWire } from './actions/wire.js';
import { type FaultInjector, InvalidFaultRulesError } from './faults.js';
import { send } from './gateway/envelope.js';
import { readBody } from './gateway/request.js';
import type { EmulatorState } from './state.js';

export const CONTROL_PREFIX = '/_emulator/';

export interface ControlDeps {
  state: EmulatorState;
  faults: FaultInjector;
  calls: Map<string, number>;
  /** Clears data, faults and call counts. */
  reset(): void;
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
};

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
