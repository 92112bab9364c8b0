/**
 * The browser the tests run: found by TAPROOT_CHROMIUM or the usual paths,
 * and, when there is none, a failure that says what is needed, where it
 * looked and how to point elsewhere (never Playwright's `spawn … EACCES`).
 */
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { CANDIDATES, CHROMIUM_ENV, findChromium } from "../chromium.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "taproot-chromium-find-"));
});
after(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("findChromium", () => {
  test("runs TAPROOT_CHROMIUM when it names an executable file", async () => {
    const browser = join(dir, "my-chrome");
    await writeFile(browser, "#!/bin/sh\n");
    await chmod(browser, 0o755);
    assert.equal(findChromium({ [CHROMIUM_ENV]: browser }), browser);
  });

  test("a TAPROOT_CHROMIUM that cannot run is an error naming it, not a spawn EACCES", async () => {
    const notExecutable = join(dir, "plain-file");
    await writeFile(notExecutable, "");
    await chmod(notExecutable, 0o644);
    for (const [path, problem] of [
      [notExecutable, "not executable"],
      [join(dir, "nowhere"), "missing"],
      [dir, "not a file"],
    ] as const) {
      assert.throws(
        () => findChromium({ [CHROMIUM_ENV]: path }),
        (err: Error) =>
          err.message.startsWith(
            `launchChromium: ${CHROMIUM_ENV}=${path} cannot be run (${problem})`,
          ) && err.message.includes("apt-get install chromium"),
        `findChromium with ${CHROMIUM_ENV}=${path}`,
      );
    }
  });

  test("without TAPROOT_CHROMIUM, finds the first usable candidate or lists where it looked", () => {
    let found: string | undefined;
    let error: Error | undefined;
    try {
      found = findChromium({});
    } catch (err) {
      error = err as Error;
    }
    if (found !== undefined) {
      assert.ok(CANDIDATES.includes(found), `found ${found}, not one of the candidates`);
      return;
    }
    // No browser on this machine: the message must say all of this (and the browser tests fail with it).
    for (const part of [
      ...CANDIDATES,
      `${CHROMIUM_ENV} is not set`,
      `${CHROMIUM_ENV}=/path/to/chromium`,
    ]) {
      assert.ok(
        error?.message.includes(part),
        `the error lacks ${JSON.stringify(part)}: ${error?.message}`,
      );
    }
  });
});
