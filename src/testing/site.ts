import { fileURLToPath } from "node:url";

/**
 * The directory of the core's own files (`src/` or `dist/`): frames there are
 * the machinery between the user's call and the hook, not the creation site.
 * Frames of `taproot-context/node` stay: a request context is created there.
 */
const coreDir = new URL("../", import.meta.url);
const testingDir = new URL("./", import.meta.url);
const prefixes = [coreDir.href, fileURLToPath(coreDir)];
const ownPrefixes = [testingDir.href, fileURLToPath(testingDir)];

/** How many frames a site keeps after the internal ones are dropped. */
const FRAMES = 8;

/**
 * Site is a stack trace captured where a context was created. Capturing is
 * cheap (V8 formats the text only when `stack` is first read), so sites are
 * taken eagerly and printed only in a report or a warning.
 */
export class Site {
  declare readonly stack: string;

  constructor() {
    // Error.stackTraceLimit (default 10) leaves room for the 3 to 5 internal frames frames() drops;
    // raising it here would double the cost of every capture.
    Error.captureStackTrace(this, Site);
  }

  /** frames returns the `at …` lines outside taproot's core, the caller's first. */
  frames(): string[] {
    const lines = String(this.stack ?? "")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.startsWith("at "));
    const outside = lines.filter((l) => !isInternal(l) && !l.includes("(node:internal/"));
    return (outside.length > 0 ? outside : lines).slice(0, FRAMES);
  }

  /** first returns the caller's frame without the leading "at ", or "unknown site". */
  first(): string {
    return this.frames()[0]?.slice(3) ?? "unknown site";
  }

  /** text returns the frames as an indented block, one per line. */
  text(indent = "    "): string {
    const f = this.frames();
    return f.length === 0 ? `${indent}(no stack trace)` : f.map((l) => indent + l).join("\n");
  }
}

function isInternal(frame: string): boolean {
  for (const p of ownPrefixes) if (frame.includes(p)) return true;
  for (const p of prefixes) {
    const i = frame.indexOf(p);
    // A file directly in the core directory: cancel.ts, deadline.ts, …
    if (
      i >= 0 &&
      !frame
        .slice(i + p.length)
        .split(":")[0]!
        .includes("/")
    )
      return true;
  }
  return false;
}
