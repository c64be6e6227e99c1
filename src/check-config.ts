import { upstreamOf } from './bridge.js';
import { ConfigError, loadConfig } from './config.js';
import { judgeUpstreamFailure } from './ops/readiness.js';
import { PERMISSION_CODES } from './ops/upstream-activity.js';
import { inspectStore } from './store/index.js';
import { MUTATING_ACTIONS } from './volcengine/actions.js';
import { CloudIdentityClient } from './volcengine/client.js';
import { isCredentialProblem, VolcengineApiError } from './volcengine/errors.js';

// `node dist/main.js --check-config` (`npm run check`): validates every environment variable, opens
// the store read-only (inspectStore: fails on what `npm start` would refuse), makes
// one signed ListUsers call with the configured credentials, then probes the other read-only actions
// for missing IAM permissions. Nothing is started or written. Output: a first line OK or FAILED (the
// verdict, for scripts), then indented detail lines.

export interface CheckOutcome {
  ok: boolean;
  /** One line per finding; the first says whether the check passed. */
  lines: string[];
}

const PREFIX = 'volc-scim-bridge --check-config';
const CREDENTIAL_VARS =
  'VOLCENGINE_ACCESS_KEY, VOLCENGINE_SECRET_KEY, VOLCENGINE_SESSION_TOKEN, VOLCENGINE_REGION and VOLCENGINE_ENDPOINT';

export async function checkConfig(
  env: NodeJS.ProcessEnv = process.env,
  options: { timeoutMs?: number } = {},
): Promise<CheckOutcome> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(env, () => 'generated-at-start');
  } catch (e) {
    if (e instanceof ConfigError) return { ok: false, lines: [`${PREFIX}: FAILED, ${e.message}`] };
    throw e;
  }
  const notes: string[] = [];
  if (config.scimTokenGenerated)
    notes.push('  note: SCIM_BEARER_TOKENS is not set; a random token would be generated at every start');
  if (!config.databaseUrl)
    notes.push(
      `  note: no DATABASE_URL; the embedded store in DATA_DIR=${config.dataDir} allows one replica only`,
    );

  // The store as `npm start` would open it, read-only: what it would refuse, this refuses too.
  const store = await inspectStore({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    upstream: upstreamOf(config),
  });
  if (!store.ok) {
    return {
      ok: false,
      lines: [
        `${PREFIX}: FAILED, the bridge would not start: ${store.problems[0]}`,
        ...store.problems.slice(1).map((p) => `  also: ${p}`),
      ],
    };
  }
  notes.push(`  store: ${store.summary}`);

  // NODE_ENV=production without credentials is refused by loadConfig above.
  if (!config.volcengine) {
    return {
      ok: true,
      lines: [
        `${PREFIX}: OK, configuration valid; no Volcengine credentials, so the bridge would run against its in-process CloudIdentity emulator (nothing to check upstream)`,
        ...notes,
      ],
    };
  }

  const requestIds: string[] = [];
  const client = new CloudIdentityClient({
    ...config.volcengine,
    region: config.region,
    endpoint: config.endpoint,
    attemptTimeoutMs: Math.min(config.upstreamAttemptTimeoutMs, 10_000),
    maxAttempts: 2,
    observer: { onAttempt: (e) => e.requestId && requestIds.push(e.requestId) },
  });
  const where = `${config.endpoint}, region ${config.region}, access key ${config.volcengine.accessKeyId.slice(0, 6)}…`;
  const deadline = () => ({ deadlineAt: Date.now() + (options.timeoutMs ?? 15_000) });
  let first: string;
  try {
    const users = await client.listUsers({ PageNumber: 1, PageSize: 1 }, deadline());
    const rid = requestIds.at(-1);
    if (store.newAndEmpty && users.Total > 0) {
      await client.close();
      return {
        ok: false,
        lines: [
          `${PREFIX}: FAILED, the bridge would not start: the store is new and empty, but CloudIdentity at ${where} already holds ` +
            `${users.Total} users; if this bridge ran before, restore its store from a backup, else start once with --accept-empty-store ` +
            '(see the README section "The store")',
          `  ${store.summary}`,
        ],
      };
    }
    first = `configuration valid and CloudIdentity accepted the credentials (ListUsers at ${where}${rid ? `, RequestId ${rid}` : ''})`;
  } catch (err) {
    const verdict = judgeUpstreamFailure(err);
    const rid = verdict.requestId ?? requestIds.at(-1);
    const tail = `(ListUsers at ${where}${rid ? `, RequestId ${rid}` : ''})`;
    if (!verdict.ok) {
      await client.close();
      return {
        ok: false,
        lines: [
          `${PREFIX}: FAILED, configuration valid but ${verdict.detail} ${tail}; check ${CREDENTIAL_VARS}`,
        ],
      };
    }
    first = `configuration valid; ${verdict.detail} ${tail}`;
  }
  try {
    const probes = await probeReadPermissions(client, deadline);
    const missing = probes.filter((p) => p.outcome === 'missing');
    const unknown = probes.filter((p) => p.outcome === 'unknown');
    const lines = [
      `  permissions: ${['ListUsers', ...probes.filter((p) => p.outcome === 'allowed').map((p) => p.action)].join(', ')} allowed`,
      ...missing.map(
        (p) => `  permissions: ${p.action} DENIED (${p.detail}); add cloudidentity:${p.action} to the policy`,
      ),
      ...unknown.map((p) => `  permissions: ${p.action} not verified (${p.detail})`),
      // Calling a mutating action is the only proof of its permission, and --check-config changes nothing.
      `  permissions: ${MUTATING_ACTIONS.join(', ')} not verified (no call without side effects)`,
    ];
    if (missing.length > 0) {
      return {
        ok: false,
        lines: [
          `${PREFIX}: FAILED, ${first}, but the credentials lack permission for ${missing.map((p) => p.action).join(', ')}; see the README section "Volcengine credentials"`,
          ...lines,
        ],
      };
    }
    return { ok: true, lines: [`${PREFIX}: OK, ${first}`, ...lines, ...notes] };
  } finally {
    await client.close();
  }
}

/** An id no CloudIdentity user or group has: the Get* probes answer "not found" when allowed. */
const NO_SUCH_ID = 'volc-scim-bridge-check-config-probe';

interface Probe {
  action: string;
  outcome: 'allowed' | 'missing' | 'unknown';
  detail: string;
}

/**
 * The other read-only actions the bridge calls. The IAM check comes before the lookup, so a
 * "not found" for a made-up id proves the permission as well as a success does.
 */
async function probeReadPermissions(
  client: CloudIdentityClient,
  deadline: () => { deadlineAt: number },
): Promise<Probe[]> {
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['GetUser', () => client.getUser({ UserId: NO_SUCH_ID }, deadline())],
    ['ListGroups', () => client.listGroups({ PageNumber: 1, PageSize: 1 }, deadline())],
    ['GetGroup', () => client.getGroup({ GroupId: NO_SUCH_ID }, deadline())],
    [
      'ListGroupMembers',
      () => client.listGroupMembers({ GroupId: NO_SUCH_ID, PageNumber: 1, PageSize: 1 }, deadline()),
    ],
  ];
  return Promise.all(
    calls.map(async ([action, call]): Promise<Probe> => {
      try {
        await call();
        return { action, outcome: 'allowed', detail: 'ok' };
      } catch (err) {
        if (err instanceof VolcengineApiError) {
          const rid = err.requestId ? `, RequestId ${err.requestId}` : '';
          if (PERMISSION_CODES.has(err.code))
            return { action, outcome: 'missing', detail: `${err.code}${rid}` };
          if (!isCredentialProblem(err)) return { action, outcome: 'allowed', detail: err.code };
        }
        return { action, outcome: 'unknown', detail: judgeUpstreamFailure(err).detail };
      }
    }),
  );
}
