/**
 * The seed's scenario with the core alone: a root from background(), a
 * worker that polls a queue every second until it is canceled, a
 * handler-like function that does its work under a deadline, and a clean
 * exit on SIGINT or SIGTERM with no timer left behind.
 *
 * Run it: `npx tsx examples/worker.ts` (Ctrl-C to stop).
 * `npm start` runs the full program with the HTTP server: examples/server.ts.
 */
import * as context from "taproot-context";

const POLL_MS = Number(process.env.POLL_MS ?? 1_000);

/** pollQueue takes jobs until ctx is done; the ticker ends quietly then. */
async function pollQueue(ctx: context.Context, queue: string[]): Promise<void> {
  for await (const now of context.ticker(ctx, POLL_MS)) {
    const job = queue.shift();
    console.log(`poll at ${new Date(now).toISOString()}: ${job ?? "queue empty"}`);
    if (job !== undefined) await handle(ctx, job);
  }
  console.log(`poller stopping: ${String(context.cause(ctx))}`);
}

/** handle does "database work" that must finish within 300 ms, or gives up. */
async function handle(ctx: context.Context, job: string): Promise<void> {
  const [jobCtx, cancel] = context.withTimeout(ctx, 300);
  try {
    await doDatabaseWork(jobCtx, job === "slow job" ? 1_000 : 100);
    console.log(`  ${job}: done`);
  } catch (err) {
    console.log(`  ${job}: gave up (${(err as Error).message})`);
  } finally {
    cancel();
  }
}

/** doDatabaseWork stands for a query that respects its context. */
async function doDatabaseWork(ctx: context.Context, ms: number): Promise<void> {
  await context.sleep(ctx, ms);
}

// The root of the program's tree, and a way to cancel it on a signal.
const [ctx, stop] = context.withCancelCause(context.background());
const onSignal = (name: NodeJS.Signals) => () => stop(new Error(`received ${name}`));
const onInt = onSignal("SIGINT");
const onTerm = onSignal("SIGTERM");
process.once("SIGINT", onInt);
process.once("SIGTERM", onTerm);
console.log(`worker started (pid ${process.pid}); press Ctrl-C to stop`);

await pollQueue(ctx, ["send welcome mail", "slow job", "resize avatar"]);

process.off("SIGINT", onInt);
process.off("SIGTERM", onTerm);
const pending = process.getActiveResourcesInfo().filter((r) => r === "Timeout");
console.log(`stopped cleanly; pending timers: ${pending.length}`);
