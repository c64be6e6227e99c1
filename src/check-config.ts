import { ConfigError, loadConfig } from './config.js';
import { judgeUpstreamFailure } from './ops/readiness.js';
import { CloudIdentityClient } from './volcengine/client.js';

// `node dist/main.js --check-config` (`npm run check`): validates every environment variable and
// makes one signed ListUsers call with the configured credentials. Nothing is started or written.

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

  if (!config.volcengine) {
    if (config.production) {
      return {
        ok: false,
        lines: [
          `${PREFIX}: FAILED, NODE_ENV=production but VOLCENGINE_ACCESS_KEY and VOLCENGINE_SECRET_KEY are not set: the bridge would run against its in-process emulator`,
        ],
      };
    }
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
  try {
    await client.listUsers(
      { PageNumber: 1, PageSize: 1 },
      { deadlineAt: Date.now() + (options.timeoutMs ?? 15_000) },
    );
    const rid = requestIds.at(-1);
    return {
      ok: true,
      lines: [
        `${PREFIX}: OK, configuration valid and CloudIdentity accepted the credentials (ListUsers at ${where}${rid ? `, RequestId ${rid}` : ''})`,
        ...notes,
      ],
    };
  } catch (err) {
    const verdict = judgeUpstreamFailure(err);
    const rid = verdict.requestId ?? requestIds.at(-1);
    const tail = `(ListUsers at ${where}${rid ? `, RequestId ${rid}` : ''})`;
    if (verdict.ok)
      return { ok: true, lines: [`${PREFIX}: OK, configuration valid; ${verdict.detail} ${tail}`, ...notes] };
    return {
      ok: false,
      lines: [
        `${PREFIX}: FAILED, configuration valid but ${verdict.detail} ${tail}; check ${CREDENTIAL_VARS}`,
      ],
    };
  } finally {
    await client.close();
  }
}
