/**
 * The JSON Schema of tree files that editors read: generated from the file's `Schema`, committed and shipped as
 * `schema/agent-supervisor.schema.json`, and fresh (this test fails while the committed file differs from what the
 * Schema generates now: `npm run schema` writes it). It describes the file usefully: every setting, durations as
 * text or milliseconds, children to any depth; the example files pass it and a misspelt one does not (checked with
 * a small validator of the keywords it uses).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { parse as parseYaml } from "yaml"
import { schemaFile, schemaText } from "../scripts/schema.js"
import * as Config from "../src/Agent/Config.js"
import * as TreeFile from "../src/TreeFile.js"
import { fixture, root } from "./support.js"

type Json = any

/**
 * Whether `value` passes `schema`: the draft-07 keywords `JSONSchema.make` writes here (`$ref` into `$defs`, `type`,
 * `enum`, `anyOf`, `required`, `properties`, `additionalProperties`, `items`, `pattern`, `minimum`, `minLength`).
 * Returns the paths that fail.
 */
const validate = (rootSchema: Json, value: unknown): Array<string> => {
  const errors: Array<string> = []
  const typeOf = (v: unknown) =>
    Array.isArray(v) ? "array" : v === null ? "null" : Number.isInteger(v) ? "integer" : typeof v
  const go = (schema: Json, v: unknown, at: string): boolean => {
    const before = errors.length
    const fail = (why: string) => errors.push(`${at || "(root)"}: ${why}`)
    if (schema.$ref !== undefined) go(rootSchema.$defs[schema.$ref.replace("#/$defs/", "")], v, at)
    if (schema.allOf !== undefined) { for (const s of schema.allOf) go(s, v, at) }
    if (schema.anyOf !== undefined) {
      const saved = errors.length
      const ok = schema.anyOf.some((s: Json) => {
        const mark = errors.length
        const passed = go(s, v, at)
        errors.length = mark
        return passed
      })
      errors.length = saved
      if (!ok) fail("matches none of anyOf")
    }
    if (schema.type !== undefined) {
      const t = typeOf(v)
      if (!(t === schema.type || (schema.type === "number" && t === "integer"))) fail(`is not ${schema.type}`)
    }
    if (schema.enum !== undefined && !schema.enum.includes(v)) fail(`is not one of ${schema.enum}`)
    if (typeof v === "string" && schema.pattern !== undefined && !new RegExp(schema.pattern).test(v)) fail("pattern")
    if (typeof v === "string" && schema.minLength !== undefined && v.length < schema.minLength) fail("minLength")
    if (typeof v === "number" && schema.minimum !== undefined && v < schema.minimum) fail("minimum")
    if (typeOf(v) === "object") {
      const record = v as Record<string, unknown>
      for (const key of schema.required ?? []) if (!(key in record)) fail(`${key} is missing`)
      for (const [key, item] of Object.entries(record)) {
        const property = schema.properties?.[key]
        if (property !== undefined) go(property, item, `${at}.${key}`)
        else if (schema.additionalProperties === false) fail(`${key} is not allowed`)
        else if (typeof schema.additionalProperties === "object") go(schema.additionalProperties, item, `${at}.${key}`)
      }
    }
    if (Array.isArray(v) && schema.items !== undefined) v.forEach((item, i) => go(schema.items, item, `${at}[${i}]`))
    return errors.length === before
  }
  go(rootSchema, value, "")
  return errors
}

const committed = () => JSON.parse(fs.readFileSync(schemaFile, "utf8"))

describe("the JSON Schema of tree files", () => {
  it("is committed as generated from the Schema now (run `npm run schema` after changing it)", () => {
    assert.strictEqual(fs.readFileSync(schemaFile, "utf8"), schemaText())
    assert.deepStrictEqual(committed(), TreeFile.jsonSchema())
  })

  it("is shipped in the package and exported by path", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"))
    assert.include(pkg.files, "schema")
    assert.strictEqual(pkg.exports["./schema/*"], "./schema/*")
    assert.strictEqual(path.relative(root, schemaFile), path.join("schema", "agent-supervisor.schema.json"))
  })

  it("describes every setting: the root's, each kind of child's, an agent's whole configuration", () => {
    const schema = committed()
    assert.strictEqual(schema.$schema, "http://json-schema.org/draft-07/schema#")
    assert.strictEqual(schema.additionalProperties, false)
    assert.includeMembers(Object.keys(schema.properties), [
      "$schema",
      "name",
      "strategy",
      "intensity",
      "autoShutdown",
      "storeFlushTimeout",
      "restore",
      "forkServer",
      "store",
      "topics",
      "children"
    ])
    assert.deepStrictEqual(schema.properties.children.items, { $ref: "#/$defs/Child" })
    const kinds = schema.$defs.Child.anyOf
    assert.deepStrictEqual(kinds.map((k: Json) => k.properties.type.enum), [
      ["agent"],
      ["callback"],
      ["directory"],
      ["pool"],
      ["supervisor"]
    ])
    const [agent, callback, directory, pool, supervisor] = kinds
    assert.deepStrictEqual(Object.keys(agent.properties.config.properties), Object.keys(Config.AgentConfig.fields))
    assert.strictEqual(agent.properties.config.additionalProperties, false)
    assert.deepStrictEqual(agent.properties.config.required, ["name", "command"])
    assert.includeMembers(Object.keys(directory.properties.config.properties), [
      "agentName",
      "agentDir",
      "callbackFunction",
      "installTimeout",
      "cacheDir",
      "requestTimeout"
    ])
    assert.notInclude(Object.keys(directory.properties.config.properties), "command")
    assert.includeMembers(Object.keys(callback.properties.config.properties), ["language", "file", "function", "name"])
    assert.notInclude(Object.keys(callback.properties.config.properties), "command")
    assert.deepStrictEqual(callback.properties.config.required, ["language", "file", "name"])
    // A pool: its own fields, its members' configuration as any agent child's; topics and watch on every agent-like kind
    assert.deepStrictEqual(pool.required, ["type", "id", "size", "config"])
    assert.deepStrictEqual(pool.properties.size, { ...pool.properties.size, type: "integer", minimum: 0 })
    assert.deepStrictEqual(pool.properties.routing.enum, ["least-in-flight", "round-robin"])
    assert.deepStrictEqual(
      pool.properties.config.anyOf.map((form: Json) => form.properties),
      [agent, callback, directory].map((kind) => kind.properties.config.properties)
    )
    for (const kind of [agent, callback, directory, pool]) {
      assert.strictEqual(kind.properties.topics.type, "array")
      assert.deepStrictEqual(kind.properties.watch.required, ["paths"])
    }
    assert.notProperty(supervisor.properties, "topics")
    // Topics: settings by name, retry as data
    const topic = schema.properties.topics.additionalProperties
    assert.deepStrictEqual(Object.keys(topic.properties), ["retry", "maxQueued", "backpressure", "timeout"])
    assert.deepStrictEqual(Object.keys(topic.properties.retry.properties), ["maxAttempts", "backoff", "factor"])
    assert.strictEqual(topic.additionalProperties, false)
    // Children to any depth
    assert.deepStrictEqual(supervisor.properties.children.items, { $ref: "#/$defs/Child" })
    const stores = schema.properties.store.anyOf.map((s: Json) => s.properties.type.enum[0])
    assert.deepStrictEqual(stores, ["memory", "sqlite", "postgres"])
    // Descriptions for editors' hovers
    assert.match(schema.properties.strategy.description, /one-for-one/)
  })

  it("writes a duration once, as a number of milliseconds, a number and a unit, or short parts (\"1h30m\")", () => {
    const schema = committed()
    assert.deepStrictEqual(schema.$defs.Duration.anyOf[0], { type: "number", minimum: 0 })
    const pattern = new RegExp(schema.$defs.Duration.anyOf[1].pattern)
    for (const ok of ["5 seconds", "250 millis", "1.5 minutes", "1 day", "5s", "250ms", "1h30m", "2 h"]) {
      assert.isTrue(pattern.test(ok), ok)
    }
    for (const bad of ["5 secs", "5", "-1 seconds", "5 Seconds", " 5 seconds"]) assert.isFalse(pattern.test(bad), bad)
    // Referred to wherever a duration is taken (with the description beside the reference)
    const refOf = (property: Json) => property.$ref ?? property.allOf?.[0]?.$ref
    const agent = schema.$defs.Child.anyOf[0]
    assert.strictEqual(refOf(agent.properties.config.properties.requestTimeout), "#/$defs/Duration")
    assert.strictEqual(refOf(schema.properties.intensity.properties.window), "#/$defs/Duration")
  })

  it("passes the example files and fails a misspelt one", () => {
    const schema = committed()
    const example = fs.readFileSync(path.join(root, "examples", "tree.yaml"), "utf8")
    assert.strictEqual(
      example.split("\n")[0],
      "# yaml-language-server: $schema=../schema/agent-supervisor.schema.json"
    )
    assert.deepStrictEqual(validate(schema, parseYaml(example)), [])
    assert.deepStrictEqual(validate(schema, parseYaml(fs.readFileSync(fixture("trees", "tree.yaml"), "utf8"))), [])
    assert.deepStrictEqual(validate(schema, JSON.parse(fs.readFileSync(fixture("trees", "tree.json"), "utf8"))), [])
    const misspelt = example.replace("requestTimeout: 10 seconds", "requestTimout: 10 secs")
    assert.isNotEmpty(validate(schema, parseYaml(misspelt)))
    const badStrategy = example.replace("strategy: one-for-all", "strategy: one-for-everyone")
    assert.isNotEmpty(validate(schema, parseYaml(badStrategy)))
    // A pool and a topic: as the README writes them, and misspelt
    const pooled = {
      topics: { "doc.uploaded": { retry: { maxAttempts: 4, backoff: "100 millis", factor: 2 }, maxQueued: 500 } },
      children: [{
        type: "pool",
        id: "inference",
        size: 4,
        routing: "round-robin",
        topics: ["doc.uploaded"],
        watch: { paths: ["agents"], debounce: "1 second" },
        config: { name: "inference", command: "python3" }
      }]
    }
    assert.deepStrictEqual(validate(schema, pooled), [])
    const retry = (r: object) => ({ ...pooled, topics: { t: { retry: r } } })
    assert.deepStrictEqual(validate(schema, retry({ maxAttemps: 4 })), [".topics.t.retry: maxAttemps is not allowed"])
    assert.isNotEmpty(validate(schema, retry({ maxAttempts: 0 })))
    assert.isNotEmpty(validate(schema, { children: [{ ...pooled.children[0], size: -1 }] }))
  })

  it.effect("the example file is a tree the library accepts", () =>
    Effect.gen(function*() {
      const file = yield* TreeFile.load(path.join(root, "examples", "tree.yaml"), { env: {} })
      assert.deepStrictEqual(file.store, {
        type: "sqlite",
        filename: path.join(root, ".data", "tree.sqlite"),
        maxMetricAge: "3 days"
      })
      assert.deepStrictEqual(file.children.map((c) => `${c.type} ${c.id}`), [
        "directory summarizer",
        "supervisor workers"
      ])
      // Its intensities let a child that never starts make its supervisor escalate: nothing to warn of
      assert.deepStrictEqual(yield* TreeFile.warnings(file), [])
    }).pipe(Effect.provide(NodeContext.layer)))
})
