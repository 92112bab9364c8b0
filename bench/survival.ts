/**
 * What a loaded server keeps alive between two collections of V8's young
 * generation (`npx tsx bench/survival.ts`, after `npm run build`): bytes,
 * not time, so the noise of a shared machine barely moves them.
 *
 * A request layer that holds on to finished requests (their request,
 * response and framework objects) makes every scavenge copy them, and V8
 * grows the young generation when enough bytes survive: costs that CPU time
 * per request spreads over everything the process does. Each mode's server
 * (bench/node-load-server.js for `plain`, `requestContext+timeout`, `serve`,
 * `serve+timeout`; bench/frameworks-load-server.js for `fastify`,
 * `fastify+taproot`, `hono`, …) runs alone, with V8's `--trace-gc-nvp`,
 * under autocannon's 16 connections: WARM seconds (default 4) first, then
 * SECONDS (default 8) whose scavenges count. Printed per mode: the median
 * and the largest `new_space_survived` of those scavenges, and the requests
 * served per scavenge.
 *
 * MODES picks the servers (default `plain,requestContext+timeout,serve,
 * fastify,fastify+taproot`); TAPROOT_BENCH_VARIANTS and TAPROOT_BENCH_BEFORE
 * reach the servers as in bench/frameworks-load.ts (`fastify+taproot@name`).
 */
import { loadHttp, median, serverScriptOf, startLoadedServer, stopChild } from "./paired-rounds.js";

const MODES = (process.env.MODES ?? "plain,requestContext+timeout,serve,fastify,fastify+taproot")
  .split(",")
  .filter((mode) => mode !== "");
const WARM = Number(process.env.WARM ?? 4);
const SECONDS = Number(process.env.SECONDS ?? 8);
const CONNECTIONS = 16;

interface Survival {
  mode: string;
  medianSurvived: number;
  maxSurvived: number;
  requestsPerScavenge: number;
}

async function measure(mode: string): Promise<Survival> {
  // One array entry per scavenge, in order: the bytes that survived it.
  const survived: number[] = [];
  const { child, port } = await startLoadedServer(serverScriptOf(mode), mode, {
    nodeArgs: ["--trace-gc-nvp"],
    onStdoutLine: (line) => {
      const found = / gc=s .* new_space_survived=(\d+)/.exec(line);
      if (found !== null) survived.push(Number(found[1]));
    },
  });
  try {
    const url = `http://127.0.0.1:${port}/`;
    await loadHttp({ url, connections: CONNECTIONS }, WARM);
    const from = survived.length;
    const result = await loadHttp({ url, connections: CONNECTIONS }, SECONDS);
    const counted = survived.slice(from);
    if (counted.length === 0) throw new Error(`bench/survival.ts: ${mode} ran no scavenge`);
    return {
      mode,
      medianSurvived: median(counted),
      maxSurvived: Math.max(...counted),
      requestsPerScavenge: result.requests.total / counted.length,
    };
  } finally {
    await stopChild(child);
  }
}

console.log(
  `survival: each server alone, ${CONNECTIONS} connections, ${WARM} s of warm-up, then ${SECONDS} s counted`,
);
console.log("| server | bytes surviving a scavenge (median) | largest | requests per scavenge |");
console.log("| --- | ---: | ---: | ---: |");
for (const mode of MODES) {
  const s = await measure(mode);
  console.log(
    `| ${s.mode} | ${Math.round(s.medianSurvived).toLocaleString("en-US")} | ${s.maxSurvived.toLocaleString("en-US")} | ${Math.round(s.requestsPerScavenge)} |`,
  );
}
