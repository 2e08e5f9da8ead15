/**
 * What an agent's name may be: 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit (it
 * names a log file, a metric label, a store row).
 *
 * @internal
 */
export const AGENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/
