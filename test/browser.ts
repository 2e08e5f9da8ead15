/**
 * A headless Chromium for the browser tests: Debian's `chromium` (installed by `.ci/run`) driven by playwright-core,
 * which never downloads a browser of its own. Where there is none, the suite is skipped with the reason printed, or
 * fails under `REQUIRE_SERVICES=1` (CI).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import { type Browser, chromium } from "playwright-core"

/** The browser's executable: Debian's by default, `CHROMIUM_PATH` to use another. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"

/**
 * As root in a container there is no sandbox to use; the rest keeps Chromium off the network (this machine's is
 * closed: background connections would be refused, many at a time) and quiet at its first start.
 */
export const launchArgs: ReadonlyArray<string> = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

/** Why no browser can be launched here, or `undefined` when one can. */
export const browserUnavailable = (): string | undefined => {
  try {
    fs.accessSync(chromiumPath, fs.constants.X_OK)
    return undefined
  } catch {
    return `no Chromium at ${chromiumPath} (Debian: apt-get install chromium, as .ci/run does; or set CHROMIUM_PATH)`
  }
}

/**
 * Declares the suite when a browser is there. Otherwise prints why and skips it, or, when `REQUIRE_SERVICES=1`,
 * declares one failing test that says why.
 */
export const describeWithBrowser = (name: string, body: () => void) => {
  const unavailable = browserUnavailable()
  if (unavailable === undefined) return body()
  if (process.env.REQUIRE_SERVICES === "1") {
    return describe(name, () => {
      it("has a browser (REQUIRE_SERVICES=1)", () => assert.fail(unavailable))
    })
  }
  console.warn(`skipping "${name}": ${unavailable}`)
  return describe.skip(name, body)
}

/** A browser (playwright makes it a fresh profile in a temporary directory), closed with the scope. */
export const launch: Effect.Effect<Browser, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(() => chromium.launch({ executablePath: chromiumPath, args: [...launchArgs], timeout: 30_000 })),
  (browser) => Effect.promise(() => browser.close())
)
