/**
 * A first-in first-out queue with O(1) amortized push, shift and unshift (`Array.prototype.shift` is O(n)): the
 * store writer's pending writes, a log file's waiting lines.
 *
 * @internal
 */
export class Fifo<A> {
  private items: Array<A | undefined> = []
  private head = 0

  get size(): number {
    return this.items.length - this.head
  }

  peek(): A | undefined {
    return this.items[this.head]
  }

  push(item: A): void {
    this.items.push(item)
  }

  shift(): A | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head] = undefined
    this.head++
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      // Most of the array is behind the head: drop it, at a cost paid for by the shifts that made it.
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  /** Puts `item` first. */
  unshift(item: A): void {
    if (this.head > 0) this.items[--this.head] = item
    else this.items.unshift(item)
  }

  /** Takes everything out, in order. */
  clear(): Array<A> {
    const left = this.items.slice(this.head) as Array<A>
    this.items = []
    this.head = 0
    return left
  }
}
