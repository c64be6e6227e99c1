interface Slot<K, V> {
  key: K;
  value: V;
  live: boolean;
}

/**
 * A keyed table that remembers insertion order and pages by position without copying.
 * Lookups are a Map; order is an array of slots. Deletes only mark the slot (O(1)); the array is
 * compacted in place the next time someone pages by position, so a page costs O(pageSize) as long
 * as nothing was deleted since the last page.
 */
export class OrderedTable<K, V> {
  private readonly byKey = new Map<K, Slot<K, V>>();
  private slots: Slot<K, V>[] = [];
  private dead = 0;

  get size(): number {
    return this.byKey.size;
  }

  get(key: K): V | undefined {
    return this.byKey.get(key)?.value;
  }

  has(key: K): boolean {
    return this.byKey.has(key);
  }

  /** Appends; the caller guarantees the key is new. */
  add(key: K, value: V): void {
    const slot = { key, value, live: true };
    this.byKey.set(key, slot);
    this.slots.push(slot);
  }

  delete(key: K): V | undefined {
    const slot = this.byKey.get(key);
    if (!slot) return undefined;
    this.byKey.delete(key);
    slot.live = false;
    this.dead++;
    // Bound the garbage even if nobody pages: compact once half the array is dead.
    if (this.dead > 1024 && this.dead * 2 > this.slots.length) this.compact();
    return slot.value;
  }

  /** Live values at positions [offset, offset + limit) in insertion order. */
  page(offset: number, limit: number): V[] {
    if (this.dead > 0) this.compact();
    const end = Math.min(offset + limit, this.slots.length);
    const out: V[] = [];
    for (let i = offset; i < end; i++) out.push(this.slots[i]!.value);
    return out;
  }

  /** Live values in insertion order. */
  *values(): IterableIterator<V> {
    // Iterating the Map is insertion-ordered and skips deleted entries for free.
    for (const slot of this.byKey.values()) yield slot.value;
  }

  clear(): void {
    this.byKey.clear();
    this.slots = [];
    this.dead = 0;
  }

  private compact(): void {
    let w = 0;
    for (let r = 0; r < this.slots.length; r++) {
      const s = this.slots[r]!;
      if (s.live) this.slots[w++] = s;
    }
    this.slots.length = w;
    this.dead = 0;
  }
}
