import { test } from "node:test";
import { runDocBlocks } from "../fastify/doc-blocks.js";

test("docs/connect.md's example runs and prints what it says", (t) =>
  runDocBlocks(t, "docs/connect.md"));
