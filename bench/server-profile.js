/* global process */
/**
 * The measuring half of the bench servers: cpuMeter below, and the
 * profiling half (bench/node-load-server.js, bench/frameworks-load-server.js,
 * bench/rpc-load-server.js, bench/rpc-load-client.js): V8's CPU profiler,
 * the one `node --cpu-prof` runs, started and stopped over IPC so that a
 * profile holds the loaded window only, not the start-up (loading Fastify
 * compiles its validators, which would swell the total). Plain JavaScript,
 * run by plain node.
 *
 * answerProfile handles "profile-start" and { "profile-stop": path } (it
 * writes the .cpuprofile there and answers the path); it returns whether
 * the message was one of those.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";

/** The inspector session while a profile is being taken; null otherwise. */
let session = null;

function post(method, params) {
  return new Promise((resolve, reject) =>
    session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))),
  );
}

export function answerProfile(msg) {
  if (msg === "profile-start") {
    session = new Session();
    session.connect();
    void post("Profiler.enable")
      .then(() => post("Profiler.setSamplingInterval", { interval: 100 }))
      .then(() => post("Profiler.start"))
      .then(() => process.send?.("profiling"));
    return true;
  }
  if (msg !== null && typeof msg === "object" && "profile-stop" in msg) {
    const path = msg["profile-stop"];
    void post("Profiler.stop").then(({ profile }) => {
      writeFileSync(path, JSON.stringify(profile));
      session.disconnect();
      session = null;
      process.send?.(path);
    });
    return true;
  }
  return false;
}

/**
 * cpuMeter returns the answer to "mark" and "report" over IPC for a server
 * whose requests (or calls) so far `served()` counts: "mark" starts a window
 * (answered "marked"), "report" answers { cpuMicros, userMicros, served,
 * minorFaults, voluntarySwitches, involuntarySwitches }: the process's CPU
 * time (user + system), its user-mode part, the count since the mark, and
 * the page faults and context switches since the mark (a voluntary switch
 * is the event loop going to sleep). The answer returns whether the message
 * was one of those.
 */
export function cpuMeter(served) {
  // One getrusage() reading per mark and per report: CPU times, faults and switches from the same moment.
  let mark = { usage: process.resourceUsage(), served: 0 };
  return (msg) => {
    if (msg === "mark") {
      mark = { usage: process.resourceUsage(), served: served() };
      process.send?.("marked");
      return true;
    }
    if (msg === "report") {
      const usage = process.resourceUsage();
      const since = (field) => usage[field] - mark.usage[field];
      process.send?.({
        cpuMicros: since("userCPUTime") + since("systemCPUTime"),
        userMicros: since("userCPUTime"),
        served: served() - mark.served,
        minorFaults: since("minorPageFault"),
        voluntarySwitches: since("voluntaryContextSwitches"),
        involuntarySwitches: since("involuntaryContextSwitches"),
      });
      return true;
    }
    return false;
  };
}
