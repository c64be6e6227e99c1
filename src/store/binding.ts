// The store is bound to the CloudIdentity it mirrors (store_meta 'upstream'): its SCIM ids, tombstones
// and memberships mean something only there. Trial data made against the emulator must not be served
// against a real account, nor one account's records against another's.
import type { Logger } from 'pino';
import { StoreBindingError } from './errors.js';

/**
 * Which CloudIdentity the bridge talks to. Never holds the secret key. An in-process emulator is
 * named by the instance id kept in its state file (each one holds its own users); without
 * `instance` (bindings made before instances were recorded, --check-config) any emulator matches.
 */
export type CloudIdentity =
  | { kind: 'emulator'; instance?: string }
  | { kind: 'volcengine'; endpoint: string; region: string; accessKeyId: string };

/** The key/value table both stores keep (store_meta). */
export interface StoreMeta {
  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;
  /** Writes only when the key is absent (two replicas starting at once: the first one wins). */
  insertMetaIfAbsent(key: string, value: string): Promise<void>;
}

export const UPSTREAM_KEY = 'upstream';

export function describeUpstream(u: CloudIdentity): string {
  if (u.kind === 'emulator')
    return `the in-process CloudIdentity emulator${u.instance ? ` (instance ${u.instance})` : ''}`;
  return `CloudIdentity at ${u.endpoint} (region ${u.region}, access key ${u.accessKeyId})`;
}

function canonical(u: CloudIdentity): string {
  return JSON.stringify(
    u.kind === 'emulator'
      ? { kind: 'emulator', ...(u.instance ? { instance: u.instance } : {}) }
      : {
          kind: 'volcengine',
          // https://open.volcengineapi.com and https://open.volcengineapi.com/ are one endpoint.
          endpoint: u.endpoint.replace(/\/+$/, ''),
          region: u.region,
          accessKeyId: u.accessKeyId,
        },
  );
}

/** The same CloudIdentity; an emulator binding without an instance matches any emulator. */
export function sameCloudIdentity(a: CloudIdentity, b: CloudIdentity): boolean {
  if (a.kind === 'emulator' && b.kind === 'emulator')
    return !a.instance || !b.instance || a.instance === b.instance;
  return canonical(a) === canonical(b);
}

export function parseBinding(text: string): CloudIdentity | null {
  try {
    const v = JSON.parse(text) as CloudIdentity;
    return v && (v.kind === 'emulator' || v.kind === 'volcengine') ? v : null;
  } catch {
    return null;
  }
}

/**
 * Records `upstream` on a store's first start; afterwards refuses another one with a
 * StoreBindingError, unless `rebind`, which records the new one and logs a warning.
 * `where` names the store for messages ("DATA_DIR /data", "the PostgreSQL database").
 */
export async function bindUpstream(
  meta: StoreMeta,
  upstream: CloudIdentity,
  opts: { rebind?: boolean; logger?: Logger; where: string; fresh: string },
): Promise<void> {
  const wanted = canonical(upstream);
  await meta.insertMetaIfAbsent(UPSTREAM_KEY, wanted);
  const stored = await meta.getMeta(UPSTREAM_KEY);
  if (stored === null || stored === wanted) return;
  const heldIdentity = parseBinding(stored);
  if (heldIdentity && sameCloudIdentity(heldIdentity, upstream)) {
    // Bound before emulator instances were recorded: this emulator's instance is recorded now.
    if (
      heldIdentity.kind === 'emulator' &&
      !heldIdentity.instance &&
      upstream.kind === 'emulator' &&
      upstream.instance
    )
      await meta.setMeta(UPSTREAM_KEY, wanted);
    return;
  }
  const held = heldIdentity ? describeUpstream(heldIdentity) : 'an unknown CloudIdentity';
  const requested = describeUpstream(upstream);
  if (opts.rebind) {
    await meta.setMeta(UPSTREAM_KEY, wanted);
    opts.logger?.warn(
      { previous: held, now: requested },
      `--rebind-store: the store in ${opts.where} mirrored ${held}; it is now bound to ${requested}. Records whose CloudIdentity users do not exist there read as missing or detached`,
    );
    return;
  }
  if (heldIdentity?.kind === 'emulator' && upstream.kind === 'emulator') {
    throw new StoreBindingError(
      held,
      requested,
      `the store in ${opts.where} mirrors ${held}, but this bridge runs another in-process emulator ` +
        `(instance ${upstream.instance}, its state in DATA_DIR/emulator.sqlite). Each in-process emulator holds its own ` +
        'users and groups: two bridges on one DATABASE_URL without Volcengine credentials would give one person two ids. ' +
        'For several replicas without a Volcengine account, run the standalone emulator (npm run emulator) and point every ' +
        'replica at it with VOLCENGINE_ENDPOINT and its development keys; if this emulator replaces a lost one and you ' +
        'mean to go on with it, start once with --rebind-store',
    );
  }
  throw new StoreBindingError(
    held,
    requested,
    `the store in ${opts.where} mirrors ${held}, but this bridge is configured for ${requested}. ` +
      `Its SCIM ids, deactivated users and memberships belong to that CloudIdentity. Either use ${opts.fresh} ` +
      'for this CloudIdentity, or start once with --rebind-store to bind this store to it (only if it is the same ' +
      'directory under new settings, e.g. a rotated access key or a new endpoint address)',
  );
}

/** Reads the binding without writing (inspectStore): a problem line, or null. */
export async function checkBinding(
  meta: Pick<StoreMeta, 'getMeta'>,
  upstream: CloudIdentity,
  where: string,
): Promise<string | null> {
  const stored = await meta.getMeta(UPSTREAM_KEY);
  if (stored === null) return null;
  const held = parseBinding(stored);
  if (held && sameCloudIdentity(held, upstream)) return null;
  return `the store in ${where} mirrors ${held ? describeUpstream(held) : 'an unknown CloudIdentity'}, not ${describeUpstream(upstream)}; start with --rebind-store or use another store`;
}
