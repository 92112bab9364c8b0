import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { background, cause, Canceled, withCancel } from "../../src/index.js";
import { signalContext, SignalError } from "../../src/node/index.js";

const fixture = fileURLToPath(new URL("./fixtures/signal-worker.ts", import.meta.url));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
}

/** runFixture starts the fixture, sends `signals` once it printed `after`, and waits for its exit. */
function runFixture(args: string[], after: string, signals: NodeJS.Signals[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", fixture, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    let sent = 0;
    const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
      if (sent === 0 && stdout.includes(after)) {
        sent++;
        child.kill(signals[0]);
        if (signals.length > 1) {
          const next = (): void => {
            if (stdout.includes("stuck")) child.kill(signals[1]);
            else setTimeout(next, 10);
          };
          next();
        }
      }
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout });
    });
  });
}

describe("signalContext", () => {
  it("ends a child process's worker on SIGTERM: exit 0, cause names the signal, no timer left", async () => {
    const run = await runFixture([], "ready", ["SIGTERM"]);
    assert.equal(run.code, 0, `exit code, output:\n${run.stdout}`);
    assert.match(run.stdout, /cause: SignalError: received SIGTERM/);
    assert.match(run.stdout, /worker stopped after \d+ ticks; active: \[\]/);
  });

  it("lets a second signal end the process once stop() has run", async () => {
    const run = await runFixture(["stuck"], "ready", ["SIGINT", "SIGINT"]);
    assert.match(run.stdout, /cause: SignalError: received SIGINT/);
    assert.equal(run.signal, "SIGINT", `exit: code ${run.code}, signal ${run.signal}`);
  });

  it("is canceled by a signal, and stop() removes its handlers", async () => {
    const before = process.listenerCount("SIGUSR2");
    const [ctx, stop] = signalContext(background(), ["SIGUSR2"]);
    assert.equal(process.listenerCount("SIGUSR2"), before + 1);
    // A signal handler does not keep the event loop alive; this timer does
    // until the signal arrives.
    const keepAlive = setTimeout(() => {}, 5_000);
    process.kill(process.pid, "SIGUSR2");
    await ctx.done();
    clearTimeout(keepAlive);
    const why = cause(ctx);
    assert.ok(why instanceof SignalError && why.signal === "SIGUSR2", `cause = ${String(why)}`);
    assert.equal(ctx.err(), Canceled);
    stop();
    stop();
    assert.equal(process.listenerCount("SIGUSR2"), before, "listeners after stop()");
  });

  it("follows its parent and is canceled by stop()", () => {
    const [parent, cancelParent] = withCancel(background());
    const [child, stopChild] = signalContext(parent);
    cancelParent();
    assert.equal(child.err(), Canceled);
    stopChild();
    const [ctx, stop] = signalContext(background(), ["SIGHUP"]);
    {
      using _ = stop;
    }
    assert.equal(ctx.err(), Canceled);
    assert.equal(process.listenerCount("SIGHUP"), 0);
  });

  it("explains bad arguments", () => {
    assert.throws(() => signalContext(null as never), {
      name: "TypeError",
      message: /signalContext\(parent, signals\): parent is null; pass background\(\)/,
    });
    assert.throws(() => signalContext(background(), ["SIGKILL"]), {
      message: /SIGKILL cannot be caught by any process/,
    });
    assert.throws(() => signalContext(background(), ["SIGFOO" as never]), {
      message: /"SIGFOO" \(string\) is not a signal name/,
    });
    assert.throws(() => signalContext(background(), []), { message: /non-empty array/ });
  });
});
