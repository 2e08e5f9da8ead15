/**
 * The built-in stores' default bounds on task records, in one place: the stores' defaults and the messages that
 * tell a caller why a task is no longer known (`Topic.TopicError`'s `not_found`, the admin API's `TaskNotFound`)
 * read them here.
 *
 * @internal
 */

/** Task records a built-in store keeps by default (`maxTasks`), the latest written. */
export const DEFAULT_MAX_TASKS = 10_000

/** Days after its outcome a SQL store keeps a task record by default (`maxTaskAge`). */
export const DEFAULT_MAX_TASK_AGE_DAYS = 7

/** `n` with a comma between thousands: not `toLocaleString`, whose first call loads ICU's data (18 ms at import). */
const withThousands = (n: number): string => String(n).replace(/\B(?=(\d{3})+$)/g, ",")

/** What a built-in store keeps of tasks' outcomes, as a clause: "the store keeps the last 10,000 outcomes ...". */
export const TASK_BOUNDS = `the store keeps the last ${withThousands(DEFAULT_MAX_TASKS)} outcomes by ` +
  `default, its maxTasks; a SQL store also drops those older than its maxTaskAge, ${DEFAULT_MAX_TASK_AGE_DAYS} ` +
  "days by default"
