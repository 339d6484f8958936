/**
 * A bounded map for caches on the statement path, kept as two generations: new entries go to
 * the young map; when it holds half the bound it becomes the old one and the previous old map
 * is dropped whole. A hit in the old map is copied to the young one, so what is used stays.
 * Unlike an LRU built on Map delete + set, a hit costs one look-up and nothing is ever deleted
 * key by key: a Map that loses an entry per insertion rehashes itself again and again (V8
 * keeps deleted entries until it compacts), which under a stream of distinct texts (point
 * selects with literal ids) cost more than the analysis the cache saves.
 * Holds at most `max` distinct keys; a value is only ever what was stored under its key.
 */
export class GenerationalCache<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();
  private readonly half: number;

  constructor(max: number) {
    this.half = Math.max(1, Math.floor(max / 2));
  }

  get(key: string): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) return v;
    const o = this.old.get(key);
    if (o !== undefined) this.set(key, o);
    return o;
  }

  set(key: string, value: V): void {
    this.young.set(key, value);
    if (this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  clear(): void {
    this.young.clear();
    this.old.clear();
  }
}
