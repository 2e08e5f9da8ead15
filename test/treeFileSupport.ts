/**
 * Tree files parsed from YAML text, for the TreeFile tests: the file, or the problems of a bad one.
 */
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { ConfigError } from "../src/Errors.js"
import * as TreeFile from "../src/TreeFile.js"
import { failureOf } from "./support.js"

/** `text` parsed as a YAML tree file, relative paths against `dir` when given. */
export const yaml = (text: string, dir?: string) =>
  TreeFile.parse(text, { format: "yaml", env: {}, ...(dir === undefined ? {} : { dir }) })

/** The problems of a bad YAML file, as `field: rule` lines. */
export const problemsOf = (text: string) =>
  Effect.map(Effect.exit(yaml(text)), (exit) => {
    const error = failureOf(exit)
    assert.instanceOf(error, ConfigError)
    return (error as ConfigError).problems.map((p) => `${p.field}: ${p.rule}`)
  })
