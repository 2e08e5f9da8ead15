/**
 * Deep equality that sees Effect's `Option` (a setup file of every test file). chai's `deep-eql` compares an
 * iterable by what it yields, and an `Option` yields the same opaque wrapper whatever it holds (it is iterable for
 * `yield*`): `assert.deepStrictEqual` found `Option.some(1)` equal to `Option.none()`, either way round and nested in
 * arrays and objects, so an assertion on an `Option` that should be empty, or full, could not fail. Here an
 * `Option` equals only an `Option` of the same kind whose value is deeply equal.
 */
import * as Option from "effect/Option"
import { chai } from "vitest"

const optionAware = (left: unknown, right: unknown): boolean | null => {
  const isLeft = Option.isOption(left)
  const isRight = Option.isOption(right)
  if (!isLeft && !isRight) return null
  if (!isLeft || !isRight) return false
  if (Option.isNone(left) || Option.isNone(right)) return Option.isNone(left) && Option.isNone(right)
  return deepEqual(left.value, right.value)
}

const deepEqual = (left: unknown, right: unknown): boolean =>
  chai.util.eql(left, right, { comparator: optionAware }) as boolean

chai.config.deepEqual = deepEqual
