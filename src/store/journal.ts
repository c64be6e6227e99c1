// The embedded store's files in DATA_DIR:
//   snapshot.json   {"format","version","seq","users","groups","memberships"}: the whole state as of
//                   entry `seq`; replaced atomically (temp file, fsync, rename, fsync directory).
//   journal.jsonl   one JournalEntry per line, seq increasing by one; a write is acknowledged only
//                   once its line is written and fdatasync'ed (group commit: one sync for all the
//                   lines written meanwhile). Holds the entries after the snapshot
//                   (and, right after a crash mid-compaction, older ones, which are skipped).
// Loading = snapshot, then the journal entries with seq > snapshot seq.
import {
  closeSync,
  existsSync,
  fdatasync as fdatasyncCallback,
  fstat as fstatCallback,
  ftruncateSync,
  open as openCallback,
  writeSync,
} from 'node:fs';
import { type FileHandle, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import {
  groupDefect,
  isObject,
  type JournalEntry,
  type MemoryState,
  type StateImage,
  userDefect,
} from './memory-state.js';

export const SNAPSHOT_FILE = 'snapshot.json';
export const JOURNAL_FILE = 'journal.jsonl';
const SNAPSHOT_FORMAT = 'volc-scim-bridge/embedded-store-snapshot';
const SNAPSHOT_VERSION = 1;
/** The files hold userNames and other attributes clients sent: readable by the bridge's user only. */
const FILE_MODE = 0o600;
/** Records per write while serialising a snapshot: the event loop gets a turn between chunks. */
const SNAPSHOT_CHUNK = 500;

/**
 * The journal could not be written or synced. The store then refuses every operation (and its
 * readiness ping fails) until the bridge restarts: memory may hold writes that never reached the
 * disk, and nothing may be acknowledged from it. `code` is the errno of the cause when there is one.
 */
export class StoreBrokenError extends Error {
  override readonly name = 'StoreBrokenError';
  readonly code: string;
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    const code = (options.cause as { code?: unknown } | undefined)?.code;
    this.code = typeof code === 'string' ? code : 'ESTOREBROKEN';
  }
}

interface Batch {
  promise: Promise<void>;
  resolve(): void;
  reject(err: Error): void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Every append awaits its batch; this only keeps a rejected batch nobody waits on any more quiet.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await fh.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}

/** Makes creations, renames and removals in `dir` durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (e) {
    // Platforms that cannot fsync a directory (Windows); on Linux this succeeds.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw e;
  } finally {
    await fh.close();
  }
}

/** Writes `file` through a temp file, so a reader sees the old content or the new, never a part. */
async function replaceFile(
  dir: string,
  name: string,
  write: (fh: FileHandle) => Promise<void>,
): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  try {
    const fh = await open(tmp, 'w', FILE_MODE);
    try {
      await write(fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  await rename(tmp, join(dir, name));
}

/** Leftovers of a replaceFile interrupted by a crash: never complete, never read. */
export async function removeTempFiles(dir: string): Promise<void> {
  await rm(join(dir, `${SNAPSHOT_FILE}.tmp`), { force: true });
  await rm(join(dir, `${JOURNAL_FILE}.tmp`), { force: true });
}

/** Writes snapshot.json durably; returns its size in bytes. */
export async function writeSnapshot(dir: string, image: StateImage): Promise<number> {
  let bytes = 0;
  await replaceFile(dir, SNAPSHOT_FILE, async (fh) => {
    const put = async (text: string) => {
      const data = Buffer.from(text, 'utf8');
      await writeAll(fh, data);
      bytes += data.length;
    };
    const putAll = async (items: readonly unknown[]) => {
      for (let i = 0; i < items.length; i += SNAPSHOT_CHUNK) {
        const chunk = items.slice(i, i + SNAPSHOT_CHUNK).map((item) => JSON.stringify(item));
        await put((i > 0 ? ',' : '') + chunk.join(','));
      }
    };
    await put(`{"format":"${SNAPSHOT_FORMAT}","version":${SNAPSHOT_VERSION},"seq":${image.seq},"users":[`);
    await putAll(image.users);
    await put('],"groups":[');
    await putAll(image.groups);
    await put('],"memberships":[');
    await putAll(image.memberships);
    await put(']}\n');
  });
  await syncDir(dir);
  return bytes;
}

/** Shape checks, enough that a damaged or foreign file is refused instead of half-applied. */
function asEntry(value: unknown): JournalEntry | string {
  if (!isObject(value)) return 'not a JSON object';
  if (!Number.isSafeInteger(value.seq) || (value.seq as number) < 1) return 'no valid seq';
  switch (value.op) {
    case 'putUser': {
      const defect = userDefect(value.user);
      return defect ? `putUser: ${defect}` : (value as JournalEntry);
    }
    case 'putGroup': {
      const defect = groupDefect(value.group);
      return defect ? `putGroup: ${defect}` : (value as JournalEntry);
    }
    case 'deleteUser':
    case 'deleteGroup':
      return typeof value.scimId === 'string' ? (value as JournalEntry) : `${value.op} without a scimId`;
    case 'addMembership':
    case 'removeMembership':
      return typeof value.group === 'string' && typeof value.user === 'string'
        ? (value as JournalEntry)
        : `${value.op} without group and user`;
    default:
      return `unknown op ${JSON.stringify(value.op)}`;
  }
}

function readSnapshot(file: string, text: string): StateImage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is corrupt (${(e as Error).message}); refusing to start`);
  }
  if (!isObject(parsed) || parsed.format !== SNAPSHOT_FORMAT) {
    throw new Error(`${file} is not a snapshot of this store; refusing to start`);
  }
  if (parsed.version !== SNAPSHOT_VERSION) {
    throw new Error(
      `${file} has snapshot version ${String(parsed.version)}, this build reads ${SNAPSHOT_VERSION}`,
    );
  }
  const { seq, users, groups, memberships } = parsed;
  if (
    !Number.isSafeInteger(seq) ||
    !Array.isArray(users) ||
    !users.every((u) => userDefect(u) === null) ||
    !Array.isArray(groups) ||
    !groups.every((g) => groupDefect(g) === null) ||
    !Array.isArray(memberships) ||
    !memberships.every((m) => Array.isArray(m) && typeof m[0] === 'string' && typeof m[1] === 'string')
  ) {
    throw new Error(`${file} is corrupt (missing or malformed fields); refusing to start`);
  }
  return parsed as unknown as StateImage;
}

export interface LoadResult {
  snapshotBytes: number;
  /** Size of the journal's valid part (after dropping a torn last line). */
  journalBytes: number;
  /** Journal entries applied on top of the snapshot. */
  replayed: number;
}

/**
 * Loads snapshot.json and then journal.jsonl into an empty state. A last journal line that is
 * incomplete or unparsable is a write a crash interrupted (never acknowledged: acknowledgements wait
 * for fdatasync): it is dropped and the file truncated, with a warning. Anything else that does not
 * read back (a bad line before the last, a gap in seq) is corruption: refuses to start, naming the
 * file and line, rather than silently lose acknowledged writes.
 */
export async function loadDataDir(dir: string, state: MemoryState, logger?: Logger): Promise<LoadResult> {
  const snapshotFile = join(dir, SNAPSHOT_FILE);
  let snapshotBytes = 0;
  if (existsSync(snapshotFile)) {
    const data = await readFile(snapshotFile);
    snapshotBytes = data.length;
    const image = readSnapshot(snapshotFile, data.toString('utf8'));
    try {
      state.load(image);
    } catch (e) {
      throw new Error(`${snapshotFile} is inconsistent: ${(e as Error).message}; refusing to start`);
    }
  }
  const snapshotSeq = state.seq;

  const journalFile = join(dir, JOURNAL_FILE);
  if (!existsSync(journalFile)) return { snapshotBytes, journalBytes: 0, replayed: 0 };
  const data = await readFile(journalFile);
  let replayed = 0;
  let previousSeq = 0;
  let start = 0;
  let line = 0;
  let validEnd = 0;
  while (start < data.length) {
    line++;
    const newline = data.indexOf(0x0a, start);
    const end = newline === -1 ? data.length : newline;
    const isLast = newline === -1 || newline + 1 === data.length;
    const where = `${journalFile} line ${line}`;
    let parsed: unknown;
    let unreadable: string | undefined;
    if (newline === -1) unreadable = 'no newline';
    else {
      try {
        parsed = JSON.parse(data.toString('utf8', start, end));
      } catch (e) {
        unreadable = (e as Error).message;
      }
    }
    if (unreadable !== undefined) {
      // Only the last line can be a torn write: a crash (or power loss) cut the last write short.
      if (!isLast) throw new Error(`${where} is corrupt (${unreadable}); refusing to start`);
      logger?.warn(
        { file: journalFile, line, droppedBytes: data.length - start, reason: unreadable },
        'embedded store: dropped an incomplete last journal line (a write interrupted by a crash, never acknowledged)',
      );
      validEnd = start;
      break;
    }
    // A line that parses but is not an entry was not torn: a different program's file, or damage.
    const entry = asEntry(parsed);
    if (typeof entry === 'string') throw new Error(`${where} is corrupt (${entry}); refusing to start`);
    if (entry.seq <= previousSeq) {
      throw new Error(`${where} is corrupt (seq ${entry.seq} after ${previousSeq}); refusing to start`);
    }
    previousSeq = entry.seq;
    if (entry.seq > snapshotSeq) {
      if (entry.seq !== state.seq + 1) {
        throw new Error(
          `${where}: seq ${entry.seq} follows ${state.seq}, entries are missing; refusing to start`,
        );
      }
      try {
        state.apply(entry);
      } catch (e) {
        throw new Error(`${where} is inconsistent: ${(e as Error).message}; refusing to start`);
      }
      replayed++;
    }
    start = end + 1;
    validEnd = start;
  }
  if (validEnd < data.length) {
    const fh = await open(journalFile, 'r+');
    try {
      await fh.truncate(validEnd);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
  return { snapshotBytes, journalBytes: validEnd, replayed };
}

const openFd = promisify(openCallback);
const fdatasyncFd = promisify(fdatasyncCallback);
const fstatFd = promisify(fstatCallback);

/**
 * journal.jsonl opened for appending. Each entry is written to the file at once, synchronously
 * (so the file's order is the seq order, and a process crash loses nothing that was applied: the
 * kernel has it), and acknowledged after an fdatasync (so a machine crash loses nothing that was
 * acknowledged). Group commit: entries written while an fdatasync is in progress are acknowledged
 * together by the next one, so under concurrency the syncs per write fall instead of the
 * throughput collapsing to one sync per write.
 */
export class Journal {
  /** Entries written and waiting for the next fdatasync, and the batch they are acknowledged with. */
  private next: Batch | null = null;
  private inflight: Batch | null = null;
  private syncing = false;
  /** Serialises syncs with the journal swap of a compaction (and the ping's file check). */
  private chain: Promise<unknown> = Promise.resolve();
  /** Lines written while a compaction writes its snapshot: the new journal's content. */
  private recording: Array<{ seq: number; line: string }> | null = null;
  /** While a compaction swaps the file: lines held back, written to the new file after the swap. */
  private diverted: Array<{ seq: number; line: string }> | null = null;
  /** Size of the file up to the end of the last fdatasync. */
  private syncedBytes: number;
  failure: StoreBrokenError | null = null;
  readonly stats = { entries: 0, flushes: 0 };

  private constructor(
    private readonly dir: string,
    private fd: number,
    /** Size of the file: everything written, synced or not. */
    public bytes: number,
    private readonly onFlushed: () => void,
    private readonly onFailure: (err: StoreBrokenError) => void,
  ) {
    this.syncedBytes = bytes;
  }

  static async open(
    dir: string,
    hooks: { onFlushed: () => void; onFailure: (err: StoreBrokenError) => void },
  ): Promise<Journal> {
    const path = join(dir, JOURNAL_FILE);
    const created = !existsSync(path);
    const fd = await openFd(path, 'a', FILE_MODE);
    try {
      if (created) await syncDir(dir);
      const { size } = await fstatFd(fd);
      return new Journal(dir, fd, size, hooks.onFlushed, hooks.onFailure);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  private get path(): string {
    return join(this.dir, JOURNAL_FILE);
  }

  /** Resolves once `line` (and every line before it) is on disk; rejects if the journal fails. */
  append(seq: number, line: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.diverted) this.diverted.push({ seq, line });
    else {
      try {
        this.write(line);
      } catch (err) {
        return Promise.reject(this.fail(err, 'write'));
      }
      this.recording?.push({ seq, line });
    }
    this.stats.entries++;
    this.next ??= newBatch();
    const { promise } = this.next;
    if (!this.syncing) {
      this.syncing = true;
      // A microtask later, so entries written in the same turn share the first sync too.
      queueMicrotask(() => void this.drain());
    }
    return promise;
  }

  private write(line: string): void {
    const data = Buffer.from(line, 'utf8');
    let offset = 0;
    try {
      while (offset < data.length) offset += writeSync(this.fd, data, offset, data.length - offset);
    } catch (err) {
      // Best effort: leave no partial line behind.
      try {
        ftruncateSync(this.fd, this.bytes);
      } catch {}
      throw err;
    }
    this.bytes += data.length;
  }

  /** Resolves once every line appended so far is on disk (for writes that turned out to change nothing). */
  barrier(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return (this.next ?? this.inflight)?.promise ?? Promise.resolve();
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => {});
    return run;
  }

  private async drain(): Promise<void> {
    while (this.next && !this.failure) await this.exclusive(() => this.sync());
    // Synchronous with the check above: an append after this point starts a new drain.
    this.syncing = false;
  }

  /** fdatasync; a method so that tests can make it fail. */
  protected datasync(fd: number): Promise<void> {
    return fdatasyncFd(fd);
  }

  private async sync(): Promise<void> {
    const batch = this.next;
    if (!batch || this.failure) return;
    // Every entry of the batch was written before this point; later ones go to the next batch.
    this.next = null;
    this.inflight = batch;
    const upTo = this.bytes;
    try {
      await this.datasync(this.fd);
    } catch (err) {
      // After a failed fdatasync the unsynced part may or may not be on disk: drop it (best effort),
      // it was never acknowledged.
      try {
        ftruncateSync(this.fd, this.syncedBytes);
      } catch {}
      this.fail(err, 'fdatasync');
      return;
    }
    this.syncedBytes = upTo;
    this.stats.flushes++;
    this.inflight = null;
    batch.resolve();
    this.onFlushed();
  }

  /** Marks the journal failed: the batch in flight, the queued ones and every later call reject. */
  fail(cause: unknown, what: string): StoreBrokenError {
    if (this.failure) return this.failure;
    const message = cause instanceof Error ? cause.message : String(cause);
    this.failure = new StoreBrokenError(
      `embedded store unavailable: ${what} of ${this.path} failed (${message}); it refuses every operation until the bridge restarts`,
      { cause },
    );
    this.inflight?.reject(this.failure);
    this.next?.reject(this.failure);
    this.inflight = null;
    this.next = null;
    this.recording = null;
    this.diverted = null;
    this.onFailure(this.failure);
    return this.failure;
  }

  /** Starts keeping the lines written from now on, for replaceAfter. */
  startRecording(): void {
    this.recording = [];
  }

  stopRecording(): void {
    this.recording = null;
  }

  /**
   * Replaces the journal with its entries after `seq` (a snapshot now holds the rest), atomically:
   * temp file, fsync, rename, fsync directory. Entries appended meanwhile are held back and written
   * to whichever file is current afterwards. A failure before the rename leaves the old journal in
   * use and is only reported; after it, the old file is gone, so the journal fails.
   */
  replaceAfter(seq: number): Promise<void> {
    return this.exclusive(async () => {
      if (this.failure) throw this.failure;
      const recorded = this.recording;
      this.recording = null;
      // Without the recording the new journal would lack the entries written since the snapshot.
      if (!recorded) throw new Error('compaction: the lines written since the snapshot were not recorded');
      this.diverted = [];
      const tail = Buffer.from(
        recorded
          .filter((r) => r.seq > seq)
          .map((r) => r.line)
          .join(''),
        'utf8',
      );
      try {
        await replaceFile(this.dir, JOURNAL_FILE, (fh) => writeAll(fh, tail));
      } catch (err) {
        this.undivert();
        throw err;
      }
      let fd: number;
      try {
        await syncDir(this.dir);
        fd = await openFd(this.path, 'a', FILE_MODE);
      } catch (err) {
        throw this.fail(err, 'compaction');
      }
      const old = this.fd;
      this.fd = fd;
      this.bytes = tail.length;
      this.syncedBytes = tail.length;
      try {
        closeSync(old);
      } catch {}
      this.undivert();
    });
  }

  /** Writes the lines held back during a swap to the current file (the sync after acknowledges them). */
  private undivert(): void {
    const lines = this.diverted ?? [];
    this.diverted = null;
    for (const { line } of lines) {
      try {
        this.write(line);
      } catch (err) {
        throw this.fail(err, 'write');
      }
    }
  }

  /**
   * For readiness: the journal file must still be the one in DATA_DIR. Writes to a file deleted
   * underneath (DATA_DIR removed, volume swapped) would succeed and be lost on restart.
   */
  check(): Promise<void> {
    return this.exclusive(async () => {
      if (this.failure) throw this.failure;
      const { nlink } = await fstatFd(this.fd);
      if (nlink === 0) throw this.fail(new Error('the file was deleted'), 'check');
    });
  }

  /** Waits for every appended line to be synced, then closes the file. */
  async close(): Promise<void> {
    await this.barrier().catch(() => {});
    await this.exclusive(async () => {});
    try {
      closeSync(this.fd);
    } catch (e) {
      // A journal that failed (file closed underneath, disk gone) may not close cleanly; nothing is lost then.
      if (!this.failure) throw e;
    }
  }
}
