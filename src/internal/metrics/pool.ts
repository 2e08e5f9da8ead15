/**
 * A pool's gauges, tagged by the pool's path: its size (what `scale` set) and the calls in flight through it. Hooks
 * resolved once per pool (`hooks.ts`), updated with plain calls on the request path.
 *
 * @internal
 */
import { keys } from "./definitions.js"
import { gauge } from "./hooks.js"

/** The gauges of the pool at `path`. @internal */
export const make = (path: string): { readonly size: (n: number) => void; readonly inFlight: (n: number) => void } => {
  const size = gauge(keys.poolSize, [["pool", path]])
  const inFlight = gauge(keys.poolInFlight, [["pool", path]])
  return { size: (n) => size.update(n), inFlight: (n) => inFlight.update(n) }
}
