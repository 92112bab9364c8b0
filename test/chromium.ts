/**
 * launchChromium starts a headless Chromium for the tests that drive a page:
 * the core's suite in the browser and the taproot/node debug page. It runs
 * `TAPROOT_CHROMIUM` when that is set, else the first of {@link CANDIDATES}
 * that is an executable file (Debian's `/usr/bin/chromium`, which `.ci/run`
 * installs, comes first). When none is found it fails with a message that
 * says what the tests need, where it looked and how to point it elsewhere,
 * instead of Playwright's `spawn … EACCES` or `ENOENT`. It never skips: a
 * missing browser fails the browser tests. The flags keep Chromium off the
 * network, which this machine refuses anyway, and out of any profile but
 * `userDir`.
 */
import { accessSync, constants, statSync } from "node:fs";

import { chromium } from "playwright-core";
import type { BrowserContext } from "playwright-core";

/** The environment variable that names the browser to run, overriding the search. */
export const CHROMIUM_ENV = "TAPROOT_CHROMIUM";

/** Where a Chromium or Chrome is looked for, in order, when `TAPROOT_CHROMIUM` is not set. */
export const CANDIDATES = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
  "/snap/bin/chromium",
  "/Applications/Chromium.app/Contents/MacOS/Chromium",
  "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
];

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** why returns null when `path` is an executable file, else what is wrong with it. */
function why(path: string): string | null {
  try {
    if (!statSync(path).isFile()) return "not a file";
  } catch {
    return "missing";
  }
  try {
    accessSync(path, constants.X_OK);
    return null;
  } catch {
    return "not executable";
  }
}

const HELP =
  "The browser tests (the core's suite in Chromium, the debug page) need a Chromium or Chrome " +
  "they can start: install Debian's (apt-get install chromium, as .ci/run does) or set " +
  `${CHROMIUM_ENV}=/path/to/chromium to use another browser.`;

/**
 * findChromium returns the browser the tests will run: `env.TAPROOT_CHROMIUM`
 * if set (and executable), else the first executable candidate. It throws an
 * Error saying what is needed and where it looked when there is none.
 */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string {
  const chosen = env[CHROMIUM_ENV];
  if (chosen !== undefined && chosen !== "") {
    const problem = why(chosen);
    if (problem === null) return chosen;
    throw new Error(
      `launchChromium: ${CHROMIUM_ENV}=${chosen} cannot be run (${problem}). ${HELP}`,
    );
  }
  const looked: string[] = [];
  for (const path of CANDIDATES) {
    const problem = why(path);
    if (problem === null) return path;
    looked.push(`${path} (${problem})`);
  }
  throw new Error(
    `launchChromium: no Chromium found; ${CHROMIUM_ENV} is not set, and none of these can be run: ${looked.join(", ")}. ${HELP}`,
  );
}

export async function launchChromium(userDir: string): Promise<BrowserContext> {
  const executablePath = findChromium();
  try {
    return await chromium.launchPersistentContext(userDir, {
      executablePath,
      args: ARGS,
      headless: true,
    });
  } catch (err) {
    const first = String((err as Error)?.message ?? err).split("\n")[0];
    throw new Error(`launchChromium: ${executablePath} did not start: ${first}. ${HELP}`, {
      cause: err,
    });
  }
}
