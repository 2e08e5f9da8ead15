/**
 * The in-memory store backend: bounded, lost when the process ends (provide it as `Store.layerMemory`, or `layer`).
 * It lives in the core (`Store.makeMemory`, `Store.layerMemory`); this module keeps its older names.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { ConfigError } from "../Errors.js"
import * as Store from "./Store.js"

/**
 * Options of the in-memory store.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = Store.MemoryOptions

/**
 * Makes an in-memory store (`Store.makeMemory`): an options key it does not know fails with a `ConfigError`
 * naming it, and the option meant when one is close.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: Options) => Effect.Effect<Store.Store["Type"], ConfigError> = Store.makeMemory

/**
 * The in-memory store as a layer; an unknown options key fails it with a `ConfigError` (see {@link make}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Store.Store, ConfigError> =>
  Layer.effect(Store.Store, Store.makeMemory(options))
