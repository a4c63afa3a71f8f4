// A binary min-heap of (key, value) pairs; equal keys come out lowest value first, so the order is fully
// defined (the receiver's repair-request schedule, and the simulator's wake-up order).
export class MinHeap {
  private keys: number[] = [];
  private values: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  clear(): void {
    this.keys = [];
    this.values = [];
  }

  peekKey(): number | undefined {
    return this.keys[0];
  }

  peekValue(): number | undefined {
    return this.values[0];
  }

  /** Entry i orders before (key, value). */
  private less(i: number, key: number, value: number): boolean {
    const k = this.keys[i]!;
    return k < key || (k === key && this.values[i]! < value);
  }

  push(key: number, value: number): void {
    const keys = this.keys;
    const values = this.values;
    let i = keys.length;
    keys.push(key);
    values.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.less(parent, key, value)) break;
      keys[i] = keys[parent]!;
      values[i] = values[parent]!;
      i = parent;
    }
    keys[i] = key;
    values[i] = value;
  }

  /** Removes the smallest entry and returns its value. */
  pop(): number | undefined {
    const keys = this.keys;
    const values = this.values;
    if (keys.length === 0) return undefined;
    const top = values[0];
    const lastKey = keys.pop()!;
    const lastValue = values.pop()!;
    const n = keys.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.less(r, keys[l]!, values[l]!) ? r : l;
        if (!this.less(c, lastKey, lastValue)) break;
        keys[i] = keys[c]!;
        values[i] = values[c]!;
        i = c;
      }
      keys[i] = lastKey;
      values[i] = lastValue;
    }
    return top;
  }
}
