import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Process tests spawn real children: keep files in one pool of 2 workers (the CI machine's cores)
    // and give slow machines room without letting a hung test run forever.
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
