/**
 * The optional peers a user installs for a feature, with the ranges this package's `peerDependencies` give: npm's
 * `latest` of them follows Effect 4 (`npm install @effect/opentelemetry` alone failed with ERESOLVE), so every
 * install command the library prints names the range. `test/peers.test.ts` keeps them equal to `package.json`.
 *
 * @internal
 */
export const OPTIONAL_PEERS = {
  "@effect/cluster": "^0.60.2",
  "@effect/opentelemetry": "^0.64.1",
  "@effect/sql-pg": "^0.53.0",
  "@effect/sql-sqlite-node": "^0.53.0"
} as const

/** `npm install` of an optional peer at the range this package takes (`@effect/sql-pg@^0.53.0`). @internal */
export const installCommand = (name: keyof typeof OPTIONAL_PEERS): string =>
  `npm install ${name}@${OPTIONAL_PEERS[name]}`
