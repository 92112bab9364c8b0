// Helpers for the tests of what taproot/pg does when a statement ends just
// before its deadline (statement-timeout.ts, CLEAR_LEAKED_TIMEOUT).
import assert from "node:assert/strict";
import type pg from "pg";
import { background, withTimeout, type Context } from "../../src/index.js";

/** recordTexts makes every client of `p` note the text of each query it is given, in order. */
export function recordTexts(p: pg.Pool): string[] {
  const texts: string[] = [];
  p.on("connect", (client) => {
    const send = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args) => {
      const first = args[0];
      texts.push(typeof first === "string" ? first : String((first as { text?: unknown }).text));
      return send(...args);
    };
  });
  return texts;
}

/**
 * nearDeadlineRuns calls `run` with a context whose deadline is 45 ms away,
 * inside the last 50 ms that taproot treats as near the deadline, until one
 * run ends before the deadline (a loaded machine may stall past it); returns
 * what `texts` holds from that run.
 */
export async function nearDeadlineRuns(
  texts: string[],
  run: (ctx: Context) => Promise<unknown>,
): Promise<string[]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    texts.length = 0;
    const [ctx, cancel] = withTimeout(background(), 45);
    const ok = await run(ctx).then(
      () => true,
      () => false,
    );
    cancel();
    if (ok) return [...texts];
  }
  assert.fail("no run ended before its 45 ms deadline in 20 attempts");
}
