// Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: self time by category
// (store, scimmy, pino, signing, …) and by function, and inclusive time of the bridge's own
// functions. Pure: unit-tested in test/bench.

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  /** Microseconds since the previous sample. */
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  ms: number;
  /** Share of the busy (non-idle) time, in %. */
  pct: number;
}

export interface ProfileSummary {
  /** Sampled time, idle excluded, in ms. */
  busyMs: number;
  idleMs: number;
  categories: ProfileEntry[];
  /**
   * Like categories, but time in V8 builtins and Node core (syscalls, crypto, streams) is charged to
   * the nearest caller that is a library or our code: "ours: store" then includes its file I/O.
   */
  components: ProfileEntry[];
  topSelf: ProfileEntry[];
  /** The bridge's own functions (dist/), by time including callees. */
  topInclusive: ProfileEntry[];
}

/** Node's async context machinery (AsyncLocalStorage, promise hooks): not charged to callers. */
const ASYNC_CONTEXT = 'AsyncLocalStorage (node:async_hooks)';

const JSON_BUILTINS = new Set(['parse', 'stringify', 'JSONParse', 'JSONStringify']);

const PACKAGE_CATEGORIES: [RegExp, string][] = [
  [/\/better-sqlite3\//, 'SQLite store (better-sqlite3)'],
  [/\/(pg|pg-protocol|pg-pool|pg-types)\//, 'pg driver'],
  [/\/scimmy\//, 'scimmy (SCIM validation/PATCH)'],
  [
    /\/(pino|pino-http|pino-std-serializers|sonic-boom|fast-redact|@pinojs\/redact|thread-stream|quick-format-unescaped|atomic-sleep|on-exit-leak-free|safe-stable-stringify)\//,
    'pino logging',
  ],
  [/\/undici\//, 'undici (HTTP client)'],
  [
    /\/(express|router|body-parser|raw-body|path-to-regexp|finalhandler|send|serve-static|qs|content-type|type-is|mime-types|mime-db|media-typer|iconv-lite|on-finished|statuses|http-errors|depd|accepts|negotiator|cookie|vary|encodeurl|escape-html|parseurl|fresh|range-parser|content-disposition|merge-descriptors|debug|ms|bytes|unpipe|ee-first|etag|forwarded|proxy-addr|ipaddr\.js|side-channel[^/]*|call-bound|get-intrinsic|es-errors|has-symbols|function-bind|hasown|object-inspect|math-intrinsics|dunder-proto|es-object-atoms|gopd|get-proto|call-bind-apply-helpers)\//,
    'express & middleware',
  ],
  [/\/zod\//, 'zod'],
  [/\/(prom-client|tdigest|bintrees)\//, 'prom-client (metrics)'],
];

/** The category a frame's self time is counted under. */
export function categorize(url: string, functionName: string): string {
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'V8/native (program)';
  if (functionName === '(root)') return 'V8/native (program)';
  if (url === '') return JSON_BUILTINS.has(functionName) ? 'JSON parse/stringify' : 'V8 builtins';
  // The bridge's only WebAssembly is undici's HTTP parser (llhttp).
  if (url.startsWith('wasm://')) return 'undici (HTTP client)';
  for (const [re, name] of PACKAGE_CATEGORIES) if (re.test(url)) return name;
  const ours = /\/dist\/(.+)$/.exec(url)?.[1] ?? /\/src\/(.+)$/.exec(url)?.[1];
  if (ours && !url.includes('node_modules')) {
    if (ours.startsWith('volcengine/signer')) return 'ours: request signing';
    if (ours.startsWith('volcengine/')) return 'ours: CloudIdentity client';
    if (ours.startsWith('scim-')) return 'ours: SCIM layer';
    if (ours.startsWith('directory/')) return 'ours: directory';
    if (ours.startsWith('store/sqlite-')) return 'ours: SQLite store (synchronous better-sqlite3 calls)';
    if (ours.startsWith('store/')) return 'ours: store';
    if (ours.startsWith('audit/')) return 'ours: audit trail';
    if (ours.startsWith('ops/access-log') || ours.startsWith('logger')) return 'ours: logging';
    if (ours.startsWith('ops/request-context')) return 'ours: request context';
    if (ours.startsWith('ops/')) return 'ours: ops (metrics, readiness)';
    return 'ours: other';
  }
  if (/^node:(internal\/)?async_(hooks|local_storage)/.test(url)) return ASYNC_CONTEXT;
  if (url.startsWith('node:internal/crypto') || url.startsWith('node:crypto')) return 'node crypto';
  if (
    /^node:(internal\/)?(http|_http|https|net|stream|streams|tls|dns|url|internal\/url)/.test(url) ||
    /^node:_http/.test(url)
  )
    return 'node http/net/streams';
  if (url.startsWith('node:')) return 'node core';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  return pkg ? `other: ${pkg}` : 'other';
}

/** Categories that belong to whoever called them. */
const RUNTIME = new Set([
  'V8 builtins',
  'node core',
  'node http/net/streams',
  'node crypto',
  'JSON parse/stringify',
]);

function frameName(node: CpuProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const short = url.includes('node_modules/')
    ? url.replace(/^.*node_modules\//, '')
    : url.replace(/^.*\/dist\//, 'dist/').replace(/^file:\/\//, '');
  const name = functionName || '(anonymous)';
  return url ? `${name} ${short}:${lineNumber + 1}` : name;
}

function entries(map: Map<string, number>, busyUs: number, top: number): ProfileEntry[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, top)
    .map(([name, us]) => ({ name, ms: us / 1000, pct: busyUs > 0 ? (100 * us) / busyUs : 0 }));
}

export function summarizeProfile(profile: CpuProfile, top = 15): ProfileSummary {
  const byId = new Map<number, CpuProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const category = new Map<string, number>();
  const component = new Map<string, number>();
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let idleUs = 0;
  let busyUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = profile.timeDeltas[i] ?? 0;
    if (!node || dt <= 0) continue;
    const cat = categorize(node.callFrame.url, node.callFrame.functionName);
    if (cat === 'idle') {
      idleUs += dt;
      continue;
    }
    busyUs += dt;
    category.set(cat, (category.get(cat) ?? 0) + dt);
    let owner = cat;
    if (RUNTIME.has(cat)) {
      for (let id = parent.get(node.id); id !== undefined; id = parent.get(id)) {
        const f = byId.get(id)!.callFrame;
        const c = categorize(f.url, f.functionName);
        if (!RUNTIME.has(c) && c !== 'V8/native (program)') {
          owner = c;
          break;
        }
      }
    }
    component.set(owner, (component.get(owner) ?? 0) + dt);
    const name = frameName(node);
    self.set(name, (self.get(name) ?? 0) + dt);
    // Inclusive time of our own functions: each function once per stack, however deep it recurses.
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!;
      if (!frame.callFrame.url.includes('/dist/') || frame.callFrame.url.includes('node_modules')) continue;
      const key = frameName(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
    }
  }
  return {
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    categories: entries(category, busyUs, 100),
    components: entries(component, busyUs, 100),
    topSelf: entries(self, busyUs, top),
    topInclusive: entries(inclusive, busyUs, top),
  };
}
