/**
 * The SQL backends, loaded when their layer is built (`Store.layerSqlite`, `Store.layerPg`...).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as driver from "./driver.js"

// An application on the memory store never loads a database driver (they add a native module and about 60 ms to
// the start-up). These are the core's only edges to a backend, and no load-time cycle: the core is evaluated before
// either runs (`dpdm` lists them unless told `--skip-dynamic-imports circular`). A driver that does not load is a
// broken install: it fails the layer.

/** `Store/Sqlite.ts`, loaded. */
export const sqlite = Effect.tryPromise({
  try: () => import("../Sqlite.js"),
  catch: (error) => driver.unavailable("load", driver.sqlite, error)
})

/** `Store/Pg.ts`, loaded. */
export const pg = Effect.tryPromise({
  try: () => import("../Pg.js"),
  catch: (error) => driver.unavailable("load", driver.pg, error)
})
