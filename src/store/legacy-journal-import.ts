// Upgrading from the version whose embedded store was an in-memory state with a journal in DATA_DIR:
//   snapshot.json  {"format":"volc-scim-bridge/embedded-store-snapshot","version":1,"seq",
//                   "users":[UserRecord…],"groups":[GroupRecord…],"memberships":[[group,user]…]}
//   journal.jsonl  one entry per line, seq increasing by one, each carrying absolute state:
//                   putUser{user} deleteUser{scimId} putGroup{group} deleteGroup{scimId}
//                   addMembership{group,user} removeMembership{group,user}; entries with
//                   seq <= the snapshot's are already in it; a torn last line was never acknowledged.
// The first start imports both into bridge.sqlite in one transaction (with a store_meta mark), then
// moves the files aside into imported-journal-store-<timestamp>/. A crash before the commit leaves
// the files in place and the next start imports again; one after it finds the mark and only moves them.
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { StoreSetupError } from './errors.js';
import { foldCase } from './fold-case.js';
import type { GroupRecord, UserRecord } from './types.js';

const SNAPSHOT_FILE = 'snapshot.json';
const JOURNAL_FILE = 'journal.jsonl';
/** Also left by that version: its lock file, and temp files of an interrupted snapshot/compaction. */
const OTHER_FILES = ['volc-scim-bridge.lock', `${SNAPSHOT_FILE}.tmp`, `${JOURNAL_FILE}.tmp`];
const SNAPSHOT_FORMAT = 'volc-scim-bridge/embedded-store-snapshot';
const IMPORTED_KEY = 'legacy_journal_import';

type Entry =
  | { seq: number; op: 'putUser'; user: UserRecord }
  | { seq: number; op: 'deleteUser'; scimId: string }
  | { seq: number; op: 'putGroup'; group: GroupRecord }
  | { seq: number; op: 'deleteGroup'; scimId: string }
  | { seq: number; op: 'addMembership'; group: string; user: string }
  | { seq: number; op: 'removeMembership'; group: string; user: string };

export function hasLegacyJournal(dataDir: string): boolean {
  return existsSync(join(dataDir, SNAPSHOT_FILE)) || existsSync(join(dataDir, JOURNAL_FILE));
}

function refuse(dataDir: string, what: string, cause?: unknown): StoreSetupError {
  return new StoreSetupError(
    'DATA_DIR',
    `DATA_DIR ${dataDir} holds the journal store of an earlier version that could not be imported: ${what}; ` +
      'nothing was changed. Fix or restore snapshot.json/journal.jsonl from a backup and start again',
    { cause },
  );
}

/** Reads snapshot + journal into the entries to apply, in order. */
function readLegacy(
  dataDir: string,
  logger?: Logger,
): { entries: Entry[]; snapshot: number; journal: number } {
  const entries: Entry[] = [];
  let snapshotSeq = 0;
  let snapshot = 0;
  const snapshotFile = join(dataDir, SNAPSHOT_FILE);
  if (existsSync(snapshotFile)) {
    let image: {
      format?: unknown;
      seq?: unknown;
      users?: unknown;
      groups?: unknown;
      memberships?: unknown;
    };
    try {
      image = JSON.parse(readFileSync(snapshotFile, 'utf8'));
    } catch (e) {
      throw refuse(dataDir, `snapshot.json is not valid JSON (${(e as Error).message})`, e);
    }
    if (
      image?.format !== SNAPSHOT_FORMAT ||
      !Number.isSafeInteger(image.seq) ||
      !Array.isArray(image.users) ||
      !Array.isArray(image.groups) ||
      !Array.isArray(image.memberships)
    ) {
      throw refuse(dataDir, 'snapshot.json is not a snapshot of that store');
    }
    snapshotSeq = image.seq as number;
    for (const user of image.users as UserRecord[]) entries.push({ seq: 0, op: 'putUser', user });
    for (const group of image.groups as GroupRecord[]) entries.push({ seq: 0, op: 'putGroup', group });
    for (const [group, user] of image.memberships as Array<[string, string]>) {
      entries.push({ seq: 0, op: 'addMembership', group, user });
    }
    snapshot = entries.length;
  }
  const journalFile = join(dataDir, JOURNAL_FILE);
  let journal = 0;
  if (existsSync(journalFile)) {
    const lines = readFileSync(journalFile, 'utf8').split('\n');
    let previous = snapshotSeq;
    for (const [i, line] of lines.entries()) {
      if (line === '') continue;
      let entry: Entry;
      try {
        entry = JSON.parse(line) as Entry;
      } catch (e) {
        // Only the last line can be torn (a crash cut the write short; it was never acknowledged).
        if (i >= lines.length - 2 && !lines.slice(i + 1).some((l) => l !== '')) {
          logger?.warn({ line: i + 1 }, 'legacy import: dropped an incomplete last journal line');
          break;
        }
        throw refuse(dataDir, `journal.jsonl line ${i + 1} is corrupt`, e);
      }
      if (!Number.isSafeInteger(entry?.seq)) throw refuse(dataDir, `journal.jsonl line ${i + 1} has no seq`);
      if (entry.seq <= snapshotSeq) continue;
      if (entry.seq !== previous + 1) {
        throw refuse(dataDir, `journal.jsonl line ${i + 1}: seq ${entry.seq} follows ${previous}`);
      }
      previous = entry.seq;
      entries.push(entry);
      journal++;
    }
  }
  return { entries, snapshot, journal };
}

function apply(db: Database.Database, entry: Entry): void {
  switch (entry.op) {
    case 'putUser': {
      const u = entry.user;
      // An upsert, not INSERT OR REPLACE: REPLACE would delete without firing the row-count trigger.
      db.prepare(
        `INSERT INTO users (scim_id, upstream_user_id, user_name, user_name_lower, external_id, active, state,
           attributes, tombstone_group_ids, version, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (scim_id) DO UPDATE SET upstream_user_id = excluded.upstream_user_id,
           user_name = excluded.user_name, user_name_lower = excluded.user_name_lower,
           external_id = excluded.external_id, active = excluded.active, state = excluded.state,
           attributes = excluded.attributes, tombstone_group_ids = excluded.tombstone_group_ids,
           version = excluded.version, created_at = excluded.created_at, updated_at = excluded.updated_at`,
      ).run(
        u.scimId,
        u.upstreamUserId,
        u.userName,
        foldCase(u.userName),
        u.externalId,
        u.active ? 1 : 0,
        u.state,
        JSON.stringify(u.attributes),
        JSON.stringify(u.tombstoneGroupIds),
        u.version,
        u.createdAt,
        u.updatedAt,
      );
      break;
    }
    case 'putGroup': {
      const g = entry.group;
      db.prepare(
        `INSERT INTO groups (scim_id, group_name, display_name, display_name_lower, external_id, attributes,
           version, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (scim_id) DO UPDATE SET group_name = excluded.group_name,
           display_name = excluded.display_name, display_name_lower = excluded.display_name_lower,
           external_id = excluded.external_id, attributes = excluded.attributes, version = excluded.version,
           created_at = excluded.created_at, updated_at = excluded.updated_at`,
      ).run(
        g.scimId,
        g.groupName,
        g.displayName,
        foldCase(g.displayName),
        g.externalId,
        JSON.stringify(g.attributes),
        g.version,
        g.createdAt,
        g.updatedAt,
      );
      break;
    }
    case 'deleteUser':
      db.prepare('DELETE FROM memberships WHERE user_scim_id = ?').run(entry.scimId);
      db.prepare('DELETE FROM users WHERE scim_id = ?').run(entry.scimId);
      break;
    case 'deleteGroup':
      db.prepare('DELETE FROM memberships WHERE group_scim_id = ?').run(entry.scimId);
      db.prepare('DELETE FROM groups WHERE scim_id = ?').run(entry.scimId);
      break;
    case 'addMembership':
      db.prepare(
        'INSERT INTO memberships (group_scim_id, user_scim_id) VALUES (?, ?) ON CONFLICT DO NOTHING',
      ).run(entry.group, entry.user);
      break;
    case 'removeMembership':
      db.prepare('DELETE FROM memberships WHERE group_scim_id = ? AND user_scim_id = ?').run(
        entry.group,
        entry.user,
      );
      break;
    default:
      throw new Error(`unknown op ${JSON.stringify((entry as { op?: unknown }).op)}`);
  }
}

function moveAside(dataDir: string): string {
  const aside = join(dataDir, `imported-journal-store-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(aside, { recursive: true, mode: 0o700 });
  for (const name of [SNAPSHOT_FILE, JOURNAL_FILE, ...OTHER_FILES]) {
    if (existsSync(join(dataDir, name))) renameSync(join(dataDir, name), join(aside, name));
  }
  return aside;
}

/**
 * Imports snapshot.json + journal.jsonl into `db` (migrated, empty) once, then moves them aside.
 * The caller holds the DATA_DIR lock. `beforeMove` is a test hook (a crash after the commit).
 */
export function importLegacyJournal(
  db: Database.Database,
  dataDir: string,
  logger?: Logger,
  hooks: { afterCommit?: () => void } = {},
): void {
  const imported = db.prepare('SELECT value FROM store_meta WHERE key = ?').get(IMPORTED_KEY) as
    | { value: string }
    | undefined;
  if (!imported) {
    const started = Date.now();
    const { entries, snapshot, journal } = readLegacy(dataDir, logger);
    const { n } = db.prepare('SELECT count(*) AS n FROM users').get() as { n: number };
    const { g } = db.prepare('SELECT count(*) AS g FROM groups').get() as { g: number };
    if (n + g > 0) {
      throw refuse(dataDir, 'bridge.sqlite already holds records, so the two cannot be merged safely');
    }
    try {
      db.transaction(() => {
        for (const entry of entries) apply(db, entry);
        db.prepare('INSERT INTO store_meta (key, value) VALUES (?, ?)').run(
          IMPORTED_KEY,
          JSON.stringify({
            at: new Date().toISOString(),
            snapshotRecords: snapshot,
            journalEntries: journal,
          }),
        );
      }).immediate();
    } catch (e) {
      throw refuse(dataDir, `a record does not fit the schema (${(e as Error).message})`, e);
    }
    const counts = db.prepare('SELECT name, n FROM row_counts').all();
    logger?.info(
      { snapshotRecords: snapshot, journalEntries: journal, counts, ms: Date.now() - started },
      'embedded store: imported the journal store of an earlier version into bridge.sqlite',
    );
  }
  hooks.afterCommit?.();
  const aside = moveAside(dataDir);
  logger?.info(
    { movedTo: aside },
    'embedded store: the old snapshot.json/journal.jsonl were moved aside; remove them once a backup is kept',
  );
}
