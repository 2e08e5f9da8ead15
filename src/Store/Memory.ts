/**
 * The in-memory store backend: bounded, lost when the process ends (provide it as `Store.layerMemory`, or `layer`).
 * It lives in the core (`Store.makeMemory`, `Store.layerMemory`); this module keeps its older names.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Store from "./Store.js"

/**
 * Options of the in-memory store.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = Store.MemoryOptions

/**
 * Makes an in-memory store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: Options) => Effect.Effect<Store.Store["Type"]> = Store.makeMemory

/**
 * The in-memory store as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Store.Store> =>
  Layer.effect(Store.Store, Store.makeMemory(options))
