import nextCoreWebVitals from "eslint-config-next/core-web-vitals";
import nextTypescript from "eslint-config-next/typescript";

const eslintConfig = [
  ...nextCoreWebVitals,
  ...nextTypescript,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": [
        "warn",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_" },
      ],
      // `!x !== null` and the like: a condition that is always true or always false.
      "no-constant-binary-expression": "error",
    },
  },
  {
    // PocketBase's JS runtime (goja): CommonJS require is how hooks share code.
    files: ["pocketbase/**/*.js"],
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    ignores: [".next/**", "node_modules/**", ".bin/**", "pocketbase/pb_data/**", "next-env.d.ts", "coverage/**"],
  },
];

export default eslintConfig;
