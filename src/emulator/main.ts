import pino from 'pino';
import { parseEmulatorEnv } from './env.js';
import { DEV_ACCESS_KEY, type RunningEmulator, StateFileError, startEmulator } from './index.js';

// Standalone CloudIdentity emulator (`npm run emulator`), configured only through the environment.

const parsed = parseEmulatorEnv(process.env);
if (!parsed.ok) {
  process.stderr.write(`${parsed.message}\n`);
  process.exit(1);
}
const { options, seedUsers, logLevel, devCredentials } = parsed.config;
const logger = pino({ level: logLevel, base: { component: 'cloudidentity-emulator' } });

let emulator: RunningEmulator;
try {
  emulator = await startEmulator({ ...options, logger });
} catch (err) {
  // A state file that is locked, damaged or unwritable: one clear line, no stack.
  if (err instanceof StateFileError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  throw err;
}
// A restored state file already holds its users: seed only an empty emulator, so restarts do not
// add another n users each time.
const restored = emulator.counts();
const seeded = seedUsers > 0 && restored.users === 0 ? seedUsers : 0;
if (seeded > 0) emulator.seedUsers(seeded);

if (devCredentials) {
  logger.warn(
    { accessKeyId: DEV_ACCESS_KEY },
    'VOLCENGINE_ACCESS_KEY/VOLCENGINE_SECRET_KEY unset: accepting the documented dev credentials',
  );
}
logger.info(
  {
    url: emulator.url,
    port: emulator.port,
    region: options.region,
    accessKeyId: options.accessKeyId ?? DEV_ACCESS_KEY,
    latencyMs: options.latencyMs,
    userQuota: options.userQuota ?? null,
    sensitiveWords: options.sensitiveWords?.length ?? 0,
    faults: options.faults,
    seededUsers: seeded,
    stateFile: options.stateFile ?? null,
    ...(options.stateFile !== undefined ? { restored } : {}),
  },
  'CloudIdentity emulator listening',
);

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'CloudIdentity emulator stopping');
  // Do not hang forever on a stuck socket.
  const force = setTimeout(() => {
    logger.error('shutdown timed out; exiting');
    process.exit(1);
  }, 5000);
  force.unref();
  try {
    await emulator.close();
    logger.info('CloudIdentity emulator stopped');
    process.exitCode = 0;
  } catch (err) {
    logger.error({ err }, 'error while stopping the emulator');
    process.exitCode = 1;
  }
}

process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
