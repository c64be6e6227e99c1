import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatTimestamp } from '../../src/emulator/clock.js';
import { type RunningEmulator, StateFileError, startEmulator } from '../../src/emulator/index.js';
import { type CallOptions, call, controlGet, fails, ok, rawRequest } from './helpers.js';

let dir: string;
let file: string;
let running: RunningEmulator[] = [];
// A clock the test moves, so restored times can be told apart from times of the next run.
let t = Date.parse('2025-03-01T08:00:00Z');
const now = () => t;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'emu-state-'));
  file = join(dir, 'nested', 'emulator.sqlite');
});
afterEach(async () => {
  for (const e of running.splice(0)) await e.close();
  rmSync(dir, { recursive: true, force: true });
});

async function start(stateFile = file): Promise<{
  emu: RunningEmulator;
  api: (action: string, params?: Record<string, unknown>, o?: CallOptions) => ReturnType<typeof call>;
}> {
  const emu = await startEmulator({ stateFile, now });
  running.push(emu);
  return { emu, api: (action, params, o) => call(emu.url, action, params, { at: t, ...o }) };
}

async function stop(emu: RunningEmulator): Promise<void> {
  running = running.filter((e) => e !== emu);
  await emu.close();
}

type Api = Awaited<ReturnType<typeof start>>['api'];

/** Every read answer the emulator gives, paged small so page boundaries are compared too. */
async function everything(api: Api) {
  const pages = async (action: string, key: string, params: Record<string, unknown> = {}) => {
    const out: unknown[] = [];
    for (let page = 1; ; page++) {
      const r = await ok(api(action, { ...params, PageSize: 2, PageNumber: page }));
      out.push(r);
      if (r[key].length === 0) return out;
    }
  };
  const users = await pages('ListUsers', 'Users');
  const groups = await pages('ListGroups', 'Groups');
  const all = (await ok(api('ListUsers', { PageSize: 100 }))).Users as { UserId: string }[];
  const allGroups = (await ok(api('ListGroups', { PageSize: 100 }))).Groups as { GroupId: string }[];
  const getUser = await Promise.all(all.map((u) => ok(api('GetUser', { UserId: u.UserId }))));
  const getGroup = await Promise.all(allGroups.map((g) => ok(api('GetGroup', { GroupId: g.GroupId }))));
  const members = await Promise.all(
    allGroups.map((g) => pages('ListGroupMembers', 'Members', { GroupId: g.GroupId })),
  );
  const filtered = await ok(api('ListUsers', { QueryString: 'émi', PageSize: 100 }));
  const byName = await ok(api('ListUsers', { UserName: 'ALICE.RENAMED' }));
  return { users, groups, getUser, getGroup, members, filtered, byName };
}

describe('emulator state file', () => {
  it('a restart from the same file gives identical answers; ids stay unique and new rows come last', async () => {
    const a = await start();
    const issued = new Set<string>();
    const user = async (params: Record<string, unknown>) => {
      t += 1000;
      const u = await ok(a.api('CreateUser', params));
      issued.add(u.UserId);
      return u;
    };
    const alice = await user({
      UserName: 'alice',
      DisplayName: 'Alice',
      Email: 'a@example.com',
      Phone: '123',
    });
    const bob = await user({ UserName: 'bob', Description: 'the builder' });
    const emilie = await user({ UserName: 'Émilie', DisplayName: 'Émilie Zoë' });
    const gone = await user({ UserName: 'gone' });
    const carol = await user({ UserName: 'carol' });
    t += 1000;
    await ok(a.api('UpdateUser', { UserId: alice.UserId, UserName: 'Alice.Renamed', Phone: '' }));
    await ok(a.api('DeleteUser', { UserId: gone.UserId }));

    t += 1000;
    const admins = await ok(
      a.api('CreateGroup', { GroupName: 'admins', JoinType: 'Manual', DisplayName: 'A' }),
    );
    const staff = await ok(a.api('CreateGroup', { GroupName: 'staff', JoinType: 'Auto' }));
    const temp = await ok(a.api('CreateGroup', { GroupName: 'temp', JoinType: 'Manual' }));
    for (const g of [admins, staff, temp]) issued.add(g.GroupId);
    await ok(a.api('UpdateGroup', { GroupId: admins.GroupId, Description: 'root', DisplayName: 'Admins' }));
    await ok(a.api('DeleteGroup', { GroupId: temp.GroupId }));
    // Join order is not creation order, and a leave + rejoin moves a member to the end.
    for (const u of [carol, alice, emilie, bob]) {
      t += 1000;
      await ok(a.api('AddUserToGroup', { GroupId: admins.GroupId, UserId: u.UserId }));
    }
    t += 1000;
    await ok(a.api('RemoveUserFromGroup', { GroupId: admins.GroupId, UserId: alice.UserId }));
    await ok(a.api('AddUserToGroup', { GroupId: admins.GroupId, UserId: alice.UserId }));
    await ok(a.api('AddUserToGroup', { GroupId: staff.GroupId, UserId: bob.UserId }));
    // A user deleted while a member leaves its groups, in the file too.
    await ok(a.api('AddUserToGroup', { GroupId: staff.GroupId, UserId: carol.UserId }));
    await ok(a.api('DeleteUser', { UserId: carol.UserId }));

    const before = await everything(a.api);
    const stateBefore = await controlGet(a.emu.url, 'state');
    expect(before.members[0]!.flatMap((p) => (p as { Members: { UserName: string }[] }).Members)).toEqual([
      expect.objectContaining({ UserName: 'Émilie' }),
      expect.objectContaining({ UserName: 'bob' }),
      expect.objectContaining({ UserName: 'Alice.Renamed' }),
    ]);
    await stop(a.emu);

    t += 3_600_000;
    const b = await start();
    expect(await everything(b.api)).toEqual(before);
    const stateAfter = await controlGet(b.emu.url, 'state');
    expect({ ...stateAfter, calls: {} }).toEqual({ ...stateBefore, calls: {} });
    expect(b.emu.counts()).toEqual({ users: 3, groups: 2, memberships: 4 });

    // Uniqueness, membership and conflict rules hold on the restored data.
    await fails(b.api('CreateUser', { UserName: 'ALICE.renamed' }), 404, 'UserNameAlreadyExists');
    await fails(
      b.api('CreateGroup', { GroupName: 'ADMINS', JoinType: 'Manual' }),
      409,
      'GroupNameAlreadyExists',
    );
    await fails(
      b.api('AddUserToGroup', { GroupId: admins.GroupId, UserId: bob.UserId }),
      409,
      'UserAlreadyInGroup',
    );
    await fails(b.api('DeleteGroup', { GroupId: admins.GroupId }), 409, 'UserGroupDeletionConflict');
    await fails(b.api('GetUser', { UserId: gone.UserId }), 404, 'UserNotFound');
    await fails(b.api('GetGroup', { GroupId: temp.GroupId }), 404, 'UserGroupNotFound');

    // New rows get fresh ids, today's time, and come after the restored ones.
    const dave = await ok(b.api('CreateUser', { UserName: 'gone' }));
    const ops = await ok(b.api('CreateGroup', { GroupName: 'temp', JoinType: 'Manual' }));
    expect(issued.has(dave.UserId)).toBe(false);
    expect(issued.has(ops.GroupId)).toBe(false);
    expect(dave.CreatedTime).toBe(formatTimestamp(t));
    const listed = (await ok(b.api('ListUsers', { PageSize: 100 }))).Users.map(
      (u: { UserName: string }) => u.UserName,
    );
    expect(listed).toEqual(['Alice.Renamed', 'bob', 'Émilie', 'gone']);
    await ok(b.api('RemoveUserFromGroup', { GroupId: admins.GroupId, UserId: emilie.UserId }));
    t += 1000;
    await ok(b.api('AddUserToGroup', { GroupId: ops.GroupId, UserId: dave.UserId }));
    await ok(b.api('UpdateUser', { UserId: bob.UserId, DisplayName: 'Bob B' }));
    const second = await everything(b.api);
    await stop(b.emu);

    // Changes made after a load are written through as well.
    const c = await start();
    expect(await everything(c.api)).toEqual(second);
    expect(second.getUser.find((u) => u.UserId === bob.UserId)).toMatchObject({
      DisplayName: 'Bob B',
      UpdatedTime: formatTimestamp(t),
      CreatedTime: bob.CreatedTime,
    });
  });

  it('reset clears the file; injected faults and call counts are never persisted', async () => {
    const a = await start();
    await ok(a.api('CreateUser', { UserName: 'kept' }));
    a.emu.setFaults([{ action: 'GetUser', probability: 1, fault: 'InternalError' }]);
    await fails(a.api('GetUser', { UserId: 'x' }), 500, 'InternalError');
    await stop(a.emu);

    const b = await start();
    expect(b.emu.calls()).toEqual({});
    expect(await controlGet(b.emu.url, 'faults')).toEqual([]);
    expect((await ok(b.api('ListUsers'))).Total).toBe(1);
    const reset = await rawRequest(b.emu.url, { method: 'POST', path: '/_emulator/reset' });
    expect(reset.status).toBe(200);
    expect((await ok(b.api('ListUsers'))).Total).toBe(0);
    await stop(b.emu);

    const rows = new Database(file, { readonly: true });
    try {
      for (const table of ['users', 'user_groups', 'members']) {
        expect(rows.prepare(`SELECT count(*) AS n FROM ${table}`).get()).toEqual({ n: 0 });
      }
    } finally {
      rows.close();
    }
    const c = await start();
    expect((await ok(c.api('ListUsers'))).Total).toBe(0);
    // …and the file keeps working after a reset.
    await ok(c.api('CreateUser', { UserName: 'after-reset' }));
    await stop(c.emu);
    const d = await start();
    expect((await ok(d.api('ListUsers'))).Users.map((u: { UserName: string }) => u.UserName)).toEqual([
      'after-reset',
    ]);
  });

  it('seedUsers is written as one batch and restored in order', async () => {
    const a = await start();
    a.emu.seedUsers(2_000);
    await stop(a.emu);
    const b = await start();
    const last = await ok(b.api('ListUsers', { PageSize: 100, PageNumber: 20 }));
    expect(last.Total).toBe(2_000);
    expect(last.Users.at(-1).UserName).toBe('seed-user-2000');
    expect((await ok(b.api('ListUsers', { UserName: 'seed-user-1234' }))).Users[0].Email).toBe(
      'seed-user-1234@example.com',
    );
  });

  it('a file held by a running emulator is refused, and free again once it closes', async () => {
    const a = await start();
    await ok(a.api('CreateUser', { UserName: 'owner' }));
    const err = await startEmulator({ stateFile: file }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateFileError);
    expect((err as Error).message).toBe(
      `emulator state file ${file} is in use by another process (another emulator, or another bridge on the same DATA_DIR); stop it or use another file`,
    );
    // The refused start changed nothing.
    expect((await ok(a.api('ListUsers'))).Total).toBe(1);
    await ok(a.api('CreateUser', { UserName: 'second' }));
    await stop(a.emu);
    const b = await start();
    expect((await ok(b.api('ListUsers'))).Total).toBe(2);
  });

  it('refuses a foreign SQLite database, a file that is not a database, and an unusable path', async () => {
    const foreign = join(dir, 'other.sqlite');
    const db = new Database(foreign);
    db.exec('CREATE TABLE accounts (id INTEGER PRIMARY KEY)');
    db.close();
    await expect(startEmulator({ stateFile: foreign })).rejects.toThrow(
      `emulator state file ${foreign} is an SQLite database of something else; point the emulator at another file`,
    );

    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'These are my notes, not a database. '.repeat(200));
    const notDb = await startEmulator({ stateFile: text }).catch((e: unknown) => e);
    expect(notDb).toBeInstanceOf(StateFileError);
    expect((notDb as Error).message).toMatch(
      /^emulator state file .*notes\.txt is not a readable SQLite database/,
    );

    const underFile = join(text, 'sub', 'emulator.sqlite');
    await expect(startEmulator({ stateFile: underFile })).rejects.toThrow(
      `emulator state file ${underFile}: cannot create its directory (ENOTDIR); it must be writable by this process`,
    );

    await expect(startEmulator({ stateFile: '' })).rejects.toThrow(/invalid emulator options: stateFile/);
    // Nothing was written to the refused files.
    expect(existsSync(`${foreign}-wal`)).toBe(false);
  });

  it('a newer schema version is refused instead of misread', async () => {
    const a = await start();
    await stop(a.emu);
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    await expect(startEmulator({ stateFile: file })).rejects.toThrow(
      `emulator state file ${file} has schema version 99, this emulator reads 1; use the matching version or move the file aside`,
    );
  });

  it('an inconsistent file (membership without its user) is refused with a message', async () => {
    const a = await start();
    const u = await ok(a.api('CreateUser', { UserName: 'u' }));
    const g = await ok(a.api('CreateGroup', { GroupName: 'g', JoinType: 'Manual' }));
    await ok(a.api('AddUserToGroup', { GroupId: g.GroupId, UserId: u.UserId }));
    await stop(a.emu);
    const db = new Database(file);
    db.pragma('foreign_keys = OFF');
    db.prepare('DELETE FROM users').run();
    db.close();
    await expect(startEmulator({ stateFile: file })).rejects.toThrow(
      `emulator state file ${file} is inconsistent: membership of ${u.UserId} in ${g.GroupId} without its user or group; move it aside to start empty`,
    );
  });
});
