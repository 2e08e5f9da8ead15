/**
 * `npm run demo:topics`: two agents chained by topics, with no application code between them. A Python agent takes
 * uploaded documents (topic "document.uploaded"), splits them into words and publishes the words to
 * "document.parsed"; a pool of two Node agents summarizes them. One document holds a poisoned word: its summary
 * fails three times (the topic's retry schedule) and lands in the dead letters, kept in the SQLite store, from
 * which the demo republishes it once the poison is understood (here: never, so it fails again).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Adapters, Store, Supervisor } from "../../src/index.js"

const here = path.dirname(fileURLToPath(import.meta.url))
// The store file stays in `.data/` (git-ignored); DEMO_STORE puts it elsewhere (the test does).
const storeFile = process.env.DEMO_STORE ?? path.join(here, "..", "..", ".data", "topics.sqlite")
fs.mkdirSync(path.dirname(storeFile), { recursive: true })

const documents = [
  { title: "weather", text: "Sun today, sun tomorrow, rain on Sunday." },
  { title: "recipe", text: "Flour, water, salt: knead the flour and water, rest, bake." },
  { title: "suspicious", text: "A perfectly normal text with poison in it." }
]

const program = Effect.gen(function*() {
  const tree = yield* Supervisor.make({
    name: "pipeline",
    topics: {
      // Three attempts in all, 100 ms then 200 ms apart.
      "document.parsed": { retry: Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(2))) }
    },
    children: [
      Supervisor.agent({
        id: "parser",
        topics: ["document.uploaded"],
        config: { name: "parser", ...Adapters.pythonCallback(path.join(here, "parse.py"), "handle_request") }
      }),
      Supervisor.pool({
        id: "summarizers",
        size: 2,
        topics: ["document.parsed"],
        config: { name: "summarizer", ...Adapters.nodeCallback(path.join(here, "summarize.mjs")) }
      })
    ]
  })
  const outcomes = yield* tree.subscribeResults
  for (const document of documents) {
    const id = yield* tree.publish("document.uploaded", document)
    yield* Console.log(`published "${document.title}" as task ${id}`)
  }
  // Each document gives two outcomes: its parse (topic document.uploaded) and its summary (document.parsed).
  for (let i = 0; i < documents.length * 2; i++) {
    const outcome = yield* Queue.take(outcomes)
    yield* Console.log(
      outcome._tag === "Succeeded"
        ? `${outcome.topic}: ${JSON.stringify(outcome.result)}`
        : `${outcome.topic}: dead-lettered after ${outcome.attempts} attempts (${outcome.errors.at(-1)?.message})`
    )
  }
  const dead = yield* tree.deadLetters({ topic: "document.parsed" })
  yield* Console.log(
    `dead letters: ${dead.map((letter) => `${letter.task_id} (${letter.attempts} attempts)`).join(", ")}`
  )
  const again = yield* tree.republish(dead[0].task_id)
  const retried = yield* tree.awaitResult(again).pipe(Effect.either)
  yield* Console.log(`republished as ${again}: ${retried._tag === "Left" ? retried.left.message : "succeeded"}`)
})

program.pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(NodeContext.layer, Store.layerSqlite({ filename: storeFile }))),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  Effect.runPromise
).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
