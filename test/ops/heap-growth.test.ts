import { describe, expect, it } from 'vitest';
import { limitHeapGrowth } from '../../src/heap-growth.js';

describe('heap growth', () => {
  it("is set unless the process was started with the operator's own --heap-growing-percent", () => {
    expect(limitHeapGrowth(['--heap-growing-percent=30'])).toBe(false);
    expect(limitHeapGrowth(['--heap_growing_percent', '30'])).toBe(false);
    expect(limitHeapGrowth(['--max-semi-space-size=8'])).toBe(true);
    expect(limitHeapGrowth([], '')).toBe(true);
    // NODE_OPTIONS (the container convention) does not appear in execArgv.
    expect(limitHeapGrowth([], '--max-old-space-size=512 --heap-growing-percent=20')).toBe(false);
    expect(limitHeapGrowth([], '--heap_growing_percent 20')).toBe(false);
    expect(limitHeapGrowth([], '--heap-growing-percentage-is-not-a-flag')).toBe(true);
  });
});
