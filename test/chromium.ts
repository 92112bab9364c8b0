/**
 * launchChromium starts Debian's headless Chromium (installed by `.ci/run`)
 * for the tests that drive a page: the core's suite in the browser and the
 * taproot/node debug page. The flags keep it off the network, which this
 * machine refuses anyway, and out of any profile but `userDir`.
 */
import { chromium } from "playwright-core";
import type { BrowserContext } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
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

export function launchChromium(userDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
  });
}
