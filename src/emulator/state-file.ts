import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { type EmulatorState, type GroupFields, nameKey, type StateSink, type UserFields } from './state.js';

// The emulator's optional state file: an SQLite database that mirrors EmulatorState. Memory stays
// the source of every answer (the indexes that make 100k users cheap); the file is written through
// on each mutation and read once at start.

/** 'CIEm': marks an SQLite file as an emulator state file, so a wrong path is refused, not mangled. */
const APPLICATION_ID = 0x4349456d;
const SCHEMA_VERSION = 1;

// `seq` (the rowid) keeps creation and join order; a new row always gets a seq above every live one.
// name_key is the JS-lower-cased name, unique as in memory (SQLite's NOCASE folds ASCII only).
const SCHEMA = `
CREATE TABLE users (
  seq INTEGER PRIMARY KEY,
  user_id TEXT NOT NULL UNIQUE,
  name_key TEXT NOT NULL UNIQUE,
  user_name TEXT NOT NULL,
  display_name TEXT NOT NULL,
  description TEXT NOT NULL,
  email TEXT NOT NULL,
  phone TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('Manual', 'Sync')),
  identity_type TEXT NOT NULL,
  created_time TEXT NOT NULL,
  updated_time TEXT NOT NULL
) STRICT;
CREATE TABLE user_groups (
  seq INTEGER PRIMARY KEY,
  group_id TEXT NOT NULL UNIQUE,
  name_key TEXT NOT NULL UNIQUE,
  group_name TEXT NOT NULL,
  display_name TEXT NOT NULL,
  description TEXT NOT NULL,
  join_type TEXT NOT NULL CHECK (join_type IN ('Manual', 'Auto')),
  source TEXT NOT NULL CHECK (source IN ('Manual', 'Sync')),
  created_time TEXT NOT NULL,
  updated_time TEXT NOT NULL
) STRICT;
CREATE TABLE members (
  seq INTEGER PRIMARY KEY,
  group_id TEXT NOT NULL REFERENCES user_groups (group_id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  join_time TEXT NOT NULL,
  UNIQUE (group_id, user_id)
) STRICT;
CREATE INDEX members_by_user ON members (user_id);
`;

/** A state file that cannot be used; the message names the file and what to do. */
export class StateFileError extends Error {
  override name = 'StateFileError';
}

export interface LoadedCounts {
  users: number;
  groups: number;
  memberships: number;
}

type Db = Database.Database;
type Stmt = Database.Statement;

export class StateFile implements StateSink {
  private readonly stmts: Record<
    | 'insertUser'
    | 'updateUser'
    | 'deleteUser'
    | 'insertGroup'
    | 'updateGroup'
    | 'deleteGroup'
    | 'addMember'
    | 'removeMember',
    Stmt
  >;
  private readonly clearAll: () => void;

  private constructor(
    private readonly db: Db,
    readonly path: string,
    /** Names this emulator's data for as long as the file lives (a store binds to it). */
    readonly instanceId: string,
  ) {
    const p = (sql: string) => db.prepare(sql);
    this.stmts = {
      insertUser: p(
        `INSERT INTO users (user_id, name_key, user_name, display_name, description, email, phone,
           source, identity_type, created_time, updated_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateUser: p(
        `UPDATE users SET name_key = ?, user_name = ?, display_name = ?, description = ?, email = ?,
           phone = ?, source = ?, identity_type = ?, created_time = ?, updated_time = ? WHERE user_id = ?`,
      ),
      deleteUser: p('DELETE FROM users WHERE user_id = ?'),
      insertGroup: p(
        `INSERT INTO user_groups (group_id, name_key, group_name, display_name, description, join_type,
           source, created_time, updated_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateGroup: p(
        `UPDATE user_groups SET name_key = ?, group_name = ?, display_name = ?, description = ?,
           join_type = ?, source = ?, created_time = ?, updated_time = ? WHERE group_id = ?`,
      ),
      deleteGroup: p('DELETE FROM user_groups WHERE group_id = ?'),
      addMember: p('INSERT INTO members (group_id, user_id, join_time) VALUES (?, ?, ?)'),
      removeMember: p('DELETE FROM members WHERE group_id = ? AND user_id = ?'),
    };
    this.clearAll = db.transaction(() => {
      db.exec('DELETE FROM members; DELETE FROM users; DELETE FROM user_groups;');
    });
  }

  /**
   * Opens (creating it and its directory if needed) and locks the file: one emulator per file, as two
   * processes writing through from different memories would corrupt each other's view.
   */
  static open(path: string): StateFile {
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // 0600 before SQLite creates it (it would use 0644; -wal and -shm copy the file's mode).
      closeSync(openSync(path, 'a', 0o600));
    } catch (err) {
      throw new StateFileError(
        `emulator state file ${path}: cannot create its directory (${(err as NodeJS.ErrnoException).code ?? err}); ` +
          'it must be writable by this process',
      );
    }
    let db: Db | undefined;
    try {
      // timeout 0: a file held by another process is refused at once instead of after 5 s.
      db = new Database(path, { timeout: 0 });
      // EXCLUSIVE: the lock taken below is kept until close (and the WAL index lives in the heap).
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      // NORMAL with WAL: a commit survives a process crash; the last ones may be lost on power
      // loss. Enough for an emulator, and cheaper than the store's FULL.
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      db.exec('BEGIN EXCLUSIVE');
      prepareSchema(db, path);
      const instanceId = instanceOf(db);
      db.exec('COMMIT');
      return new StateFile(db, path, instanceId);
    } catch (err) {
      db?.close();
      if (err instanceof StateFileError) throw err;
      throw explain(path, err);
    }
  }

  /** Fills an empty state from the file, in creation and join order. */
  load(state: EmulatorState): LoadedCounts {
    if (state.users.size > 0 || state.groups.size > 0) throw new Error('StateFile.load needs an empty state');
    const bad = (what: string) =>
      new StateFileError(
        `emulator state file ${this.path} is inconsistent: ${what}; move it aside to start empty`,
      );
    for (const r of this.db.prepare('SELECT * FROM users ORDER BY seq').iterate() as Iterable<UserRow>) {
      if (state.usersByName.has(nameKey(r.user_name)))
        throw bad(`two users named ${JSON.stringify(r.user_name)}`);
      state.restoreUser(userFromRow(r));
    }
    for (const r of this.db
      .prepare('SELECT * FROM user_groups ORDER BY seq')
      .iterate() as Iterable<GroupRow>) {
      if (state.groupsByName.has(nameKey(r.group_name))) {
        throw bad(`two groups named ${JSON.stringify(r.group_name)}`);
      }
      state.restoreGroup(groupFromRow(r));
    }
    for (const r of this.db.prepare('SELECT * FROM members ORDER BY seq').iterate() as Iterable<MemberRow>) {
      const group = state.groups.get(r.group_id);
      const user = state.users.get(r.user_id);
      if (!group || !user) throw bad(`membership of ${r.user_id} in ${r.group_id} without its user or group`);
      state.restoreMember(group, user, r.join_time);
    }
    return { users: state.users.size, groups: state.groups.size, memberships: state.membershipCount };
  }

  insertUser(u: UserFields): void {
    this.stmts.insertUser.run(u.UserId, ...userColumns(u));
  }

  updateUser(u: UserFields): void {
    expectOne(this.stmts.updateUser.run(...userColumns(u), u.UserId), `user ${u.UserId}`);
  }

  deleteUser(userId: string): void {
    // Its memberships go with it (ON DELETE CASCADE): one statement, one transaction.
    expectOne(this.stmts.deleteUser.run(userId), `user ${userId}`);
  }

  insertGroup(g: GroupFields): void {
    this.stmts.insertGroup.run(g.GroupId, ...groupColumns(g));
  }

  updateGroup(g: GroupFields): void {
    expectOne(this.stmts.updateGroup.run(...groupColumns(g), g.GroupId), `group ${g.GroupId}`);
  }

  deleteGroup(groupId: string): void {
    expectOne(this.stmts.deleteGroup.run(groupId), `group ${groupId}`);
  }

  addMember(groupId: string, userId: string, joinTime: string): void {
    this.stmts.addMember.run(groupId, userId, joinTime);
  }

  removeMember(groupId: string, userId: string): void {
    expectOne(this.stmts.removeMember.run(groupId, userId), `membership of ${userId} in ${groupId}`);
  }

  clear(): void {
    this.clearAll();
  }

  batch(fn: () => void): void {
    this.db.transaction(fn)();
  }

  /** Idempotent; releases the lock. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}

function prepareSchema(db: Db, path: string): void {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (appId === 0 && version === 0) {
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as {
      n: number;
    };
    if (tables.n > 0) {
      throw new StateFileError(
        `emulator state file ${path} is an SQLite database of something else; point the emulator at another file`,
      );
    }
    db.exec(SCHEMA);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  } else if (appId !== APPLICATION_ID) {
    throw new StateFileError(
      `emulator state file ${path} is an SQLite database of something else; point the emulator at another file`,
    );
  } else if (version !== SCHEMA_VERSION) {
    throw new StateFileError(
      `emulator state file ${path} has schema version ${version}, this emulator reads ${SCHEMA_VERSION}; ` +
        'use the matching version or move the file aside',
    );
  }
}

/** The file's instance id, created on first use (files made before it existed get one too). */
function instanceOf(db: Db): string {
  db.exec('CREATE TABLE IF NOT EXISTS emulator_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT');
  db.prepare(
    "INSERT INTO emulator_meta (key, value) VALUES ('instance', ?) ON CONFLICT (key) DO NOTHING",
  ).run(randomUUID());
  return (db.prepare("SELECT value FROM emulator_meta WHERE key = 'instance'").get() as { value: string })
    .value;
}

function explain(path: string, err: unknown): StateFileError {
  const code = (err as { code?: string }).code ?? '';
  const message = err instanceof Error ? err.message : String(err);
  const what = `emulator state file ${path}`;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new StateFileError(
      `${what} is in use by another process (another emulator, or another bridge on the same DATA_DIR); stop it or use another file`,
    );
  }
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new StateFileError(
      `${what} is not a readable SQLite database (${message}); move it aside to start empty`,
    );
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM') {
    return new StateFileError(
      `${what} cannot be opened for writing (${message}); the file and its directory must be writable`,
    );
  }
  return new StateFileError(`${what}: ${message}`);
}

/** Memory and file disagreeing is an emulator bug: fail the request loudly instead of drifting. */
function expectOne(result: Database.RunResult, what: string): void {
  if (result.changes !== 1) throw new Error(`emulator state file out of step with memory: ${what} not found`);
}

interface UserRow {
  user_id: string;
  user_name: string;
  display_name: string;
  description: string;
  email: string;
  phone: string;
  source: 'Manual' | 'Sync';
  identity_type: string;
  created_time: string;
  updated_time: string;
}

interface GroupRow {
  group_id: string;
  group_name: string;
  display_name: string;
  description: string;
  join_type: 'Manual' | 'Auto';
  source: 'Manual' | 'Sync';
  created_time: string;
  updated_time: string;
}

interface MemberRow {
  group_id: string;
  user_id: string;
  join_time: string;
}

function userFromRow(r: UserRow): UserFields {
  return {
    UserId: r.user_id,
    UserName: r.user_name,
    DisplayName: r.display_name,
    Description: r.description,
    Email: r.email,
    Phone: r.phone,
    Source: r.source,
    IdentityType: r.identity_type,
    CreatedTime: r.created_time,
    UpdatedTime: r.updated_time,
  };
}

function groupFromRow(r: GroupRow): GroupFields {
  return {
    GroupId: r.group_id,
    GroupName: r.group_name,
    DisplayName: r.display_name,
    Description: r.description,
    JoinType: r.join_type,
    Source: r.source,
    CreatedTime: r.created_time,
    UpdatedTime: r.updated_time,
  };
}

/** A user's columns after its id, in the order the insert and update statements name them. */
function userColumns(u: UserFields): unknown[] {
  return [
    nameKey(u.UserName),
    u.UserName,
    u.DisplayName,
    u.Description,
    u.Email,
    u.Phone,
    u.Source,
    u.IdentityType,
    u.CreatedTime,
    u.UpdatedTime,
  ];
}

/** A group's columns after its id, in the order the insert and update statements name them. */
function groupColumns(g: GroupFields): unknown[] {
  return [
    nameKey(g.GroupName),
    g.GroupName,
    g.DisplayName,
    g.Description,
    g.JoinType,
    g.Source,
    g.CreatedTime,
    g.UpdatedTime,
  ];
}
