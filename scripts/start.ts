// npm start – the production server: a local PocketBase (for a loopback POCKETBASE_URL) and `next start`.
import { runStack } from "./lib/run-stack";

await runStack("start");
