/**
 * A pool member's agent name, one rule for a tree's pools and a cluster's: `"<the pool's agent name>-<index>"`.
 *
 * @internal
 */
export const memberName = (name: string, index: number): string => `${name}-${index}`
