// npm run dev – PocketBase on POCKETBASE_URL and `next dev`, with development defaults in .env.local.
import { runStack } from "./lib/run-stack";

await runStack("dev");
