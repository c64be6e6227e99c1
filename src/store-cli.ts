// `npm run store -- <command>`: backup, restore and move the bridge's store. Reads DATA_DIR (and
// DATABASE_URL for `copy`'s default target) from the environment like the bridge itself.
//   backup FILE            online backup of the embedded store (safe while the bridge runs)
//   restore FILE [--allow-other-cloudidentity]
//                          install a backup as DATA_DIR's store (bridge stopped)
//   copy [--to URL]        copy the embedded store into PostgreSQL (bridge stopped); URL defaults to DATABASE_URL
//   verify FILE            check a backup file: integrity, schema version, counts
// Exit codes: 0 done, 1 refused or failed (the message says why), 2 usage error.
import { databaseUrlFrom } from './config.js';
import { StoreSetupError } from './store/errors.js';
import {
  backupEmbeddedStore,
  copyEmbeddedToPostgres,
  restoreEmbeddedStore,
  verifyStoreFile,
} from './store/tools.js';

const USAGE = `usage: npm run store -- <command>
  backup FILE        online backup of the embedded store in DATA_DIR (safe while the bridge runs)
  restore FILE [--allow-other-cloudidentity]
                     install backup FILE as DATA_DIR's store (stop the bridge first); a backup of a store
                     bound to another CloudIdentity needs the flag
  copy [--to URL]    copy the embedded store into PostgreSQL at URL (default: DATABASE_URL); stop the bridge first
  verify FILE        check a backup file (integrity, schema version, record counts)
DATA_DIR (default ./data) and DATABASE_URL (or DATABASE_URL_FILE) are read from the environment.`;

class UsageError extends Error {}

const summary = (c: { users: number; groups: number; memberships: number }) =>
  `${c.users} users, ${c.groups} groups, ${c.memberships} memberships`;

/** Runs one command; returns the line to print. Exported for tests. */
export async function runStoreCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const [command, ...rest] = argv;
  const dataDir = env.DATA_DIR?.trim() || './data';
  const operand = () => {
    if (rest.length !== 1 || rest[0].startsWith('--'))
      throw new UsageError(`${command} takes one FILE argument`);
    return rest[0];
  };
  switch (command) {
    case 'backup': {
      const file = operand();
      const started = Date.now();
      const done = await backupEmbeddedStore(dataDir, file);
      return `backup written to ${file}: ${summary(done)}, ${(done.bytes / 1024).toFixed(0)} KiB, verified, in ${Date.now() - started} ms`;
    }
    case 'restore': {
      const flag = '--allow-other-cloudidentity';
      const allowOtherCloudIdentity = rest.includes(flag);
      const files = rest.filter((a) => a !== flag);
      if (files.length !== 1 || files[0].startsWith('--'))
        throw new UsageError(`restore takes one FILE argument (and optionally ${flag})`);
      const file = files[0];
      const done = restoreEmbeddedStore(dataDir, file, { allowOtherCloudIdentity });
      return `restored ${file} into DATA_DIR ${dataDir}: ${summary(done)}${done.replacedInto ? `; the store it replaced is kept in ${done.replacedInto}` : ''}`;
    }
    case 'verify': {
      const file = operand();
      const done = verifyStoreFile(file);
      return `${file} is a whole store (id ${done.storeId}): ${summary(done)}`;
    }
    case 'copy': {
      let url = env.DATABASE_URL?.trim() || undefined;
      for (let i = 0; i < rest.length; i++) {
        if (rest[i] === '--to' && rest[i + 1]) url = rest[++i];
        else if (rest[i].startsWith('--to=')) url = rest[i].slice(5);
        else throw new UsageError(`copy: unexpected argument ${rest[i]}`);
      }
      if (!url || !/^postgres(ql)?:\/\/./.test(url))
        throw new UsageError('copy needs a postgres:// URL: --to URL, or DATABASE_URL');
      const done = await copyEmbeddedToPostgres(dataDir, url);
      return `copied the embedded store in DATA_DIR ${dataDir} to PostgreSQL: ${summary(done)}. Start the bridge with DATABASE_URL set to it; keep DATA_DIR as a backup until you have checked it`;
    }
    default:
      throw new UsageError(command ? `unknown command ${command}` : 'no command given');
  }
}

async function main(): Promise<void> {
  // DATABASE_URL_FILE, like the bridge; the other secrets are not this tool's concern.
  const { databaseUrl, problems } = databaseUrlFrom(process.env);
  if (problems.length > 0) {
    process.stderr.write(`volc-scim-bridge store: ${problems.join('; ')}\n`);
    process.exit(2);
  }
  try {
    const line = await runStoreCommand(process.argv.slice(2), { ...process.env, DATABASE_URL: databaseUrl });
    process.stdout.write(`volc-scim-bridge store: ${line}\n`);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`volc-scim-bridge store: ${e.message}\n${USAGE}\n`);
      process.exit(2);
    }
    const message = e instanceof StoreSetupError || e instanceof Error ? e.message : String(e);
    process.stderr.write(`volc-scim-bridge store: FAILED, ${message}\n`);
    process.exit(1);
  }
}

// Run only as a program, not when a test imports runStoreCommand.
if (process.argv[1] && /store-cli\.(js|ts)$/.test(process.argv[1])) void main();
