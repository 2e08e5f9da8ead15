import effect from "@effect/eslint-plugin"
import js from "@eslint/js"
import tseslint from "typescript-eslint"

/** The config file's modules: the top layer but the index (`src/TreeFile.ts`, `src/internal/treeFile/`). */
const treeFile = ["**/TreeFile.js", "**/TreeFile/**", "**/internal/treeFile/**"]
/**
 * The top layer: what builds on agents and trees (tree files, typed handles, the conformance kit, the cluster).
 */
const top = [
  ...treeFile,
  "**/Typed.js",
  "**/internal/typed/**",
  "**/Conformance.js",
  "**/internal/conformance/**",
  "**/Cluster.js",
  "**/internal/cluster/**"
]

const layers = (rules) =>
  rules.map(({ files, forbid }) => ({
    files,
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [{
          group: forbid,
          caseSensitive: true,
          message: "imports go one way (see the README's Architecture section)"
        }]
      }]
    }
  }))

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "**/*.py"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...effect.configs.dprint,
  {
    languageOptions: {
      globals: Object.fromEntries(
        [
          "process",
          "console",
          "Buffer",
          "setTimeout",
          "clearTimeout",
          "setInterval",
          "clearInterval",
          "setImmediate",
          "performance",
          "TextDecoder",
          "TextEncoder",
          "URL"
        ].map((name) => [name, "readonly"])
      )
    },
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/no-empty-object-type": "off",
      "no-constant-condition": "off",
      "@effect/dprint": ["error", {
        config: {
          indentWidth: 2,
          lineWidth: 120,
          semiColons: "asi",
          quoteStyle: "alwaysDouble",
          trailingCommas: "never",
          operatorPosition: "maintain",
          "arrowFunction.useParentheses": "force"
        }
      }]
    }
  },
  // Imports go one way: internal helpers and errors <- Store <- Agent <- Supervisor <- tree files, typed handles and
  // the conformance kit <- the index. A
  // lower layer never imports a higher one (the cycle check is `npm run cycles`).
  ...layers([
    {
      files: [
        "src/internal/*.ts",
        "src/internal/errors/**",
        "src/Errors.ts",
        "src/Protocol.ts",
        "src/Protocol/**",
        "src/Adapters.ts"
      ],
      forbid: [
        "**/Store/**",
        "**/Agent/**",
        "**/Agent.js",
        "**/Supervisor.js",
        "**/internal/supervisor/**",
        ...top
      ]
    },
    {
      files: ["src/Store/**"],
      forbid: ["**/Agent/**", "**/Agent.js", "**/Supervisor.js", "**/internal/supervisor/**", ...top]
    },
    {
      files: ["src/Agent/**"],
      forbid: ["**/Supervisor.js", "**/internal/supervisor/**", "**/Agent.js", "**/index.js", ...top]
    },
    {
      files: ["src/Supervisor.ts", "src/SupervisorEvent.ts", "src/internal/supervisor/**"],
      forbid: top
    },
    {
      files: ["src/Adapter/**"],
      forbid: [
        "**/Store/**",
        "**/Agent/**",
        "**/Agent.js",
        "**/Supervisor.js",
        "**/internal/*.js",
        "**/internal/*/**",
        "!./internal/**",
        "!**/internal/standalone/*.js"
      ]
    },
    {
      // Modules of no import but Node's and each other's, shared by the library and the Node adapter: no module of
      // the library's, no package (a bare name, "/..." anchored: any but "node:..." and "./...")
      files: ["src/internal/standalone/**"],
      forbid: ["../**", "/[A-Za-z0-9_]*", "!/node:*", "@*/**"]
    }
  ])
)
