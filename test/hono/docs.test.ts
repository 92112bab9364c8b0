import { test } from "node:test";
import { runDocBlocks } from "../fastify/doc-blocks.js";

test("docs/hono.md's examples run and print what they say", (t) => runDocBlocks(t, "docs/hono.md"));
