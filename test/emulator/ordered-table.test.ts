import { describe, expect, it } from 'vitest';
import { OrderedTable } from '../../src/emulator/ordered-table.js';

describe('OrderedTable', () => {
  it('pages by position in insertion order, skipping deleted entries', () => {
    const t = new OrderedTable<string, number>();
    for (let i = 0; i < 10; i++) t.add(`k${i}`, i);
    expect(t.page(0, 3)).toEqual([0, 1, 2]);
    t.delete('k1');
    t.delete('k5');
    expect(t.size).toBe(8);
    expect(t.page(0, 3)).toEqual([0, 2, 3]);
    expect(t.page(6, 10)).toEqual([8, 9]);
    expect(t.page(8, 10)).toEqual([]);
    expect([...t.values()]).toEqual([0, 2, 3, 4, 6, 7, 8, 9]);
  });

  it('re-adding a deleted key appends it', () => {
    const t = new OrderedTable<string, string>();
    t.add('a', 'A');
    t.add('b', 'B');
    expect(t.delete('a')).toBe('A');
    expect(t.delete('a')).toBeUndefined();
    t.add('a', 'A2');
    expect(t.page(0, 10)).toEqual(['B', 'A2']);
    expect(t.get('a')).toBe('A2');
  });

  it('compacts on its own when most entries are dead', () => {
    const t = new OrderedTable<number, number>();
    for (let i = 0; i < 5000; i++) t.add(i, i);
    for (let i = 0; i < 4000; i++) t.delete(i);
    // Internal array shrank without any page() call.
    expect((t as unknown as { slots: unknown[] }).slots.length).toBeLessThan(5000);
    expect(t.page(0, 2)).toEqual([4000, 4001]);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.page(0, 5)).toEqual([]);
  });
});
