import type { IncomingMessage, ServerResponse } from "node:http";
import { resolvePolicy, type RequestContextOptions } from "../fetch/request-context.js";
import { bindRequest, contextOf } from "./request-lifetime.js";

/**
 * contextMiddleware returns an Express/Connect middleware that creates each
 * request's context (see {@link requestContext}) before the next middleware
 * runs; any later middleware or handler gets it with `requestContext(req)`.
 * A request that already has one (served by {@link serve}) keeps it. The
 * request's original URL (`req.originalUrl` under Express) is what
 * {@link ClientDisconnectedError} reports, whatever a mounted router makes of
 * `req.url` later.
 *
 * @example
 * ```ts
 * const app = express();
 * app.use(contextMiddleware({ timeout: 5_000 }));
 * app.get("/", async (req, res) => {
 *   const ctx = requestContext(req);
 *   res.json(await db.query(ctx, "select 1"));
 * });
 * ```
 */
export function contextMiddleware(
  options?: RequestContextOptions,
): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void {
  const policy = resolvePolicy("contextMiddleware(options)", options);
  return (req, res, next) => {
    if (contextOf(req) === undefined) bindRequest(req, res, policy, null);
    next();
  };
}
