import { test } from "node:test";
import { runDocBlocks } from "./doc-blocks.js";

test("docs/fastify.md's example runs and prints what it says", (t) =>
  runDocBlocks(t, "docs/fastify.md"));
