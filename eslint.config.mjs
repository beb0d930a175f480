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
    // What Next.js bundles: the WhatsApp runtime built at boot has another bundle's copy of
    // the SDK, so a class check fails on its errors (see isPocketBaseError).
    files: ["app/**", "src/**", "instrumentation*.ts"],
    ignores: ["src/lib/pocketbase/pocketbase-error.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector: "BinaryExpression[operator='instanceof'][right.name='ClientResponseError']",
          message: "Use isPocketBaseError(): the error may come from another bundle's copy of the SDK.",
        },
        {
          selector: "CallExpression[callee.object.name='AbortSignal'][callee.property.name='any'] CallExpression[callee.object.name='AbortSignal'][callee.property.name='timeout']",
          message: "Node 20 may garbage-collect an AbortSignal.timeout inside AbortSignal.any, and it never fires: abort an AbortController from a timer.",
        },
      ],
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
