import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Stream from "effect/Stream"
import { decodeUtf8Strict, type Line, LineSplitter, splitLines } from "../../src/Protocol/Ndjson.js"

const encoder = new TextEncoder()

/** Cuts `bytes` at the given offsets, as a pipe might deliver them. */
const cut = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Array<Uint8Array> = []
  let start = 0
  for (const point of points) {
    chunks.push(bytes.subarray(start, point))
    start = point
  }
  chunks.push(bytes.subarray(start))
  return chunks
}

const splitAll = (chunks: ReadonlyArray<Uint8Array>, max: number): Array<Line> => {
  const splitter = new LineSplitter(max)
  const lines: Array<Line> = []
  for (const chunk of chunks) splitter.push(chunk, (line) => lines.push(line))
  splitter.end((line) => lines.push(line))
  return lines
}

describe("Ndjson", () => {
  it.prop(
    "lines come out whole whatever the chunking, multi-byte characters included",
    [
      FastCheck.array(FastCheck.string({ unit: "grapheme", maxLength: 30 }).map((s) => s.replace(/[\n\r]/g, "")), {
        maxLength: 20
      }),
      FastCheck.array(FastCheck.nat(2000), { maxLength: 30 })
    ],
    ([texts, cuts]) => {
      const bytes = encoder.encode(texts.map((t) => t + "\n").join(""))
      const lines = splitAll(cut(bytes, cuts), 1 << 20)
      assert.deepStrictEqual(lines.map((line) => decodeUtf8Strict(line.bytes)), texts)
      assert.isTrue(lines.every((line) => line.droppedBytes === 0))
    }
  )

  it.prop(
    "a line over the bound keeps exactly the bound and reports what it dropped; the next line is intact",
    [
      FastCheck.integer({ min: 1, max: 64 }),
      FastCheck.integer({ min: 0, max: 200 }),
      FastCheck.array(
        FastCheck.nat(300),
        { maxLength: 10 }
      )
    ],
    ([max, length, cuts]) => {
      const bytes = encoder.encode("a".repeat(length) + "\nok\n")
      const [first, second] = splitAll(cut(bytes, cuts), Math.max(max, 2))
      const bound = Math.max(max, 2)
      assert.strictEqual(first.bytes.length, Math.min(length, bound))
      assert.strictEqual(first.droppedBytes, Math.max(0, length - bound))
      assert.strictEqual(decodeUtf8Strict(second.bytes), "ok")
    }
  )

  it.prop(
    "pushText gives the same lines as push, whatever the bytes (invalid UTF-8 included), chunking and bound",
    [
      FastCheck.array(
        FastCheck.oneof(
          FastCheck.string({ unit: "grapheme", maxLength: 12 }).map((t) => encoder.encode(t)),
          FastCheck.constantFrom(
            new Uint8Array([0x0a]),
            new Uint8Array([0x0d, 0x0a]),
            new Uint8Array([0xff]),
            new Uint8Array([0xe2, 0x82]),
            // A BOM, a U+FFFD the agent means, a UTF-8-encoded surrogate and an overlong "/" (both invalid)
            new Uint8Array([0xef, 0xbb, 0xbf]),
            new Uint8Array([0xef, 0xbf, 0xbd]),
            new Uint8Array([0xed, 0xa0, 0x80]),
            new Uint8Array([0xc0, 0xaf])
          )
        ),
        { maxLength: 30 }
      ),
      FastCheck.array(FastCheck.nat(400), { maxLength: 12 }),
      // Small bounds cut lines; large ones let whole blocks of lines take the fast path.
      FastCheck.oneof(FastCheck.integer({ min: 2, max: 40 }), FastCheck.integer({ min: 41, max: 400 })),
      // Node's pipes give `Buffer`s, which take a faster decode; other `Uint8Array`s the strict decoder alone.
      FastCheck.boolean()
    ],
    ([pieces, cuts, max, buffers]) => {
      const bytes = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0))
      let offset = 0
      for (const piece of pieces) {
        bytes.set(piece, offset)
        offset += piece.length
      }
      const describe = (line: Line) =>
        line.droppedBytes > 0
          ? `too long:${line.bytes.length + line.droppedBytes}`
          : decodeUtf8Strict(line.bytes) ?? "invalid"
      const expected = splitAll(cut(bytes, cuts), max).map(describe)
      const splitter = new LineSplitter(max)
      const actual: Array<string> = []
      for (const chunk of cut(bytes, cuts)) {
        splitter.pushText(
          buffers ? Buffer.from(chunk) : chunk,
          (text) => actual.push(text),
          (line) => actual.push(describe(line))
        )
      }
      splitter.end((line) => actual.push(describe(line)))
      assert.deepStrictEqual(actual, expected)
    }
  )

  it("pushText on a Buffer: invalid bytes, a BOM and a real U+FFFD give the lines that push gives", () => {
    const bytes = Buffer.from([
      ...encoder.encode("\uFEFFfirst\n"),
      ...encoder.encode("a\uFEFFb\n\uFEFF\uFEFFtwo BOMs\n"),
      ...encoder.encode("meant \uFFFD\n"),
      0x78,
      0xff,
      0x0a,
      ...encoder.encode("after\r\n")
    ])
    const describe = (line: Line) => decodeUtf8Strict(line.bytes) ?? "invalid"
    const expected = splitAll([bytes], 1000).map(describe)
    assert.deepStrictEqual(expected, ["first", "a\uFEFFb", "\uFEFFtwo BOMs", "meant \uFFFD", "invalid", "after"])
    // Valid lines together (one decode for all), then each block with the invalid line (line by line).
    for (const chunks of [[bytes], [bytes.subarray(0, 40), bytes.subarray(40)]]) {
      const splitter = new LineSplitter(1000)
      const actual: Array<string> = []
      for (const chunk of chunks) {
        splitter.pushText(chunk, (text) => actual.push(text), (line) => actual.push(describe(line)))
      }
      splitter.end((line) => actual.push(describe(line)))
      assert.deepStrictEqual(actual, expected)
    }
    // Two BOMs at a block's start, through the strict decoder (a Uint8Array; a Buffer with a U+FFFD in it): one is
    // dropped, as on the line-by-line path, the other kept.
    const doubled = encoder.encode("\uFEFF\uFEFFmeant \uFFFD\r\n")
    for (const chunk of [doubled, Buffer.from(doubled)]) {
      const splitter = new LineSplitter(1000)
      const texts: Array<string> = []
      splitter.pushText(chunk, (text) => texts.push(text), () => assert.fail("a line as bytes"))
      assert.deepStrictEqual(texts, ["\uFEFFmeant \uFFFD"])
      assert.deepStrictEqual(splitAll([chunk], 1000).map(describe), texts)
    }
    const valid = new LineSplitter(1000)
    const texts: Array<string> = []
    valid.pushText(
      bytes.subarray(0, bytes.indexOf(0x78)),
      (text) => texts.push(text),
      () => assert.fail("a line as bytes")
    )
    assert.deepStrictEqual(texts, expected.slice(0, 4))
  })

  it("strips a trailing carriage return and gives an unterminated rest at the end", () => {
    const lines = splitAll([encoder.encode("one\r\ntwo")], 100)
    assert.deepStrictEqual(lines.map((line) => decodeUtf8Strict(line.bytes)), ["one", "two"])
  })

  it("invalid UTF-8 is detected by the strict decoder", () => {
    assert.isUndefined(decodeUtf8Strict(new Uint8Array([0xff, 0xfe])))
  })

  it.effect("splitLines works as a stream combinator", () =>
    Effect.gen(function*() {
      const lines = yield* Stream.fromIterable([encoder.encode("a\nb"), encoder.encode("c\n"), encoder.encode("d")])
        .pipe(
          splitLines(10),
          Stream.map((line) => decodeUtf8Strict(line.bytes)),
          Stream.runCollect
        )
      assert.deepStrictEqual(Chunk.toReadonlyArray(lines), ["a", "bc", "d"])
    }))
})
