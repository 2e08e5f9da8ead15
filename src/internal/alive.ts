/**
 * Whether a process exists, by its pid: signal 0 reaches it (EPERM: it exists, as another user's).
 *
 * @internal
 */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}
