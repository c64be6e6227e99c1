import { setFlagsFromString } from 'node:v8';

// How far V8 lets the old generation grow past what survived the last full collection before it
// collects again: on a machine with much memory, up to four times. Under a steady stream of
// requests about 2 MB per young-generation collection outlives two of them and is promoted, to die
// soon after, so the bridge's heap filled up to four times its live 25 MB (~100 MB, most of it
// garbage) before each full collection: the largest part of its peak RSS under load. At 1.5 times
// the live set (a full collection about every second under load, a few ms each, mostly concurrent)
// the peak under the bench's load is the bare proxy's (1.02×, against 1.14× at twice and 1.5× at
// V8's default), for 1–6 % more CPU per request than at twice (interleaved A/B runs).
// Set in the process rather than on the command line so that every way of starting the bridge
// (npm start, the image, the systemd unit, `node dist/main.js`) gets it; main.ts imports this
// module first, so it holds from the first full collection on.
const HEAP_GROWING_PERCENT = 50;

const OWN_FLAG = /(^|\s)--heap[-_]growing[-_]percent(=|\s|$)/;

/**
 * Sets V8's heap growing factor (--heap-growing-percent), unless the process was started with its
 * own, on the command line (`node --heap-growing-percent=… dist/main.js`) or in NODE_OPTIONS (which
 * execArgv does not show). Returns whether it set it.
 */
export function limitHeapGrowth(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): boolean {
  if (execArgv.some((arg) => OWN_FLAG.test(arg)) || OWN_FLAG.test(nodeOptions)) return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}

limitHeapGrowth();
