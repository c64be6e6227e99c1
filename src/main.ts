// First: V8's heap growth is set before the rest of the bridge loads (heap-growth.ts).
import './heap-growth.js';
import { generateToken, startBridge } from './bridge.js';
import { checkConfig } from './check-config.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';

async function check(): Promise<void> {
  const outcome = await checkConfig(process.env);
  (outcome.ok ? process.stdout : process.stderr).write(`${outcome.lines.join('\n')}\n`);
  process.exit(outcome.ok ? 0 : 1);
}

/**
 * A refusal to start: one JSON log line (fatal) on stdout in production, where nothing is printed
 * outside the JSON log; a line on stderr otherwise.
 */
function refuse(text: string, msg: string, fields: Record<string, unknown>): void {
  if (process.env.NODE_ENV?.trim() === 'production')
    createLogger({ level: 'info', logPii: false }).fatal(fields, msg);
  else process.stderr.write(`${text}\n`);
}

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env, generateToken);
  } catch (e) {
    if (e instanceof ConfigError) {
      refuse(`volc-scim-bridge: ${e.message}`, 'invalid configuration', { problems: e.problems });
      process.exit(2);
    }
    throw e;
  }
  const logger = createLogger({
    level: config.logLevel,
    logPii: config.logPii,
    pretty: !config.production && process.stdout.isTTY,
  });
  const bridge = await startBridge(config, logger, {
    rebindStore: process.argv.includes('--rebind-store'),
    acceptEmptyStore: process.argv.includes('--accept-empty-store'),
    reuseMovedStore: process.argv.includes('--reuse-moved-store'),
  });
  const base = config.publicBaseUrl ?? bridge.url;
  const scimUrl = `${base}/scim/v2`;
  if (bridge.emulator) {
    logger.warn(
      { emulator: bridge.emulator.url },
      'NO VOLCENGINE CREDENTIALS: running against the in-process CloudIdentity EMULATOR; nothing reaches Volcengine',
    );
  }
  if (config.scimTokenGenerated) {
    // Printed to the terminal only, never to the log stream.
    const token = bridge.config.scimTokens[0];
    const kept = bridge.trialToken
      ? `${bridge.trialToken.created ? 'Generated a token, kept' : 'Token kept'} in ${bridge.trialToken.file} (the same after a restart; delete the file for a new one):`
      : 'Generated token for this run:';
    process.stderr.write(
      `\n  SCIM_BEARER_TOKENS is not set. ${kept}\n\n    ${token}\n\n` +
        `  curl -H "Authorization: Bearer ${token}" ${scimUrl}/Users\n\n`,
    );
  }
  // bridge.port, not the URL's: a URL drops its scheme's default port (PORT=80 would log 0).
  logger.info(
    {
      url: scimUrl,
      port: bridge.port,
      tls: config.tls !== undefined,
      store: config.databaseUrl ? 'postgres' : 'embedded',
      ...(config.adminTokens.length > 0 ? { console: `${base}/admin/` } : {}),
    },
    'volc-scim-bridge listening',
  );
  // SIGHUP (`systemctl reload`) re-reads the TLS pair; without TLS there is nothing to reload, and
  // the handler keeps Node's default (exit) from cutting off in-flight requests.
  process.on('SIGHUP', () => {
    if (!config.tls) {
      logger.info('SIGHUP: plain HTTP, nothing to reload');
      return;
    }
    try {
      bridge.reloadTls();
      logger.info({ certFile: config.tls.certFile }, 'SIGHUP: TLS certificate reloaded');
    } catch (err) {
      logger.error({ err }, 'SIGHUP: TLS certificate not reloaded; the previous one stays in use');
    }
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal during shutdown: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info(
      {
        signal,
        inFlight: bridge.inFlight(),
        graceMs: config.shutdownGraceMs,
        delayMs: config.shutdownDelayMs,
      },
      'shutting down: readiness is 503, finishing in-flight requests',
    );
    // Last resort if a close step hangs despite its own bounds.
    setTimeout(
      () => {
        logger.error('shutdown did not complete in time: exiting');
        process.exit(1);
      },
      config.shutdownDelayMs + config.shutdownGraceMs + 20_000,
    ).unref();
    try {
      await bridge.close();
      logger.info('stopped');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'error during shutdown');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

const run = process.argv.includes('--check-config') ? check : main;
run().catch((err) => {
  const reason = err instanceof Error ? err.message : String(err);
  refuse(`volc-scim-bridge failed to start: ${reason}`, 'failed to start', { reason });
  process.exit(1);
});
