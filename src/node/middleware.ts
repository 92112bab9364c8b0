import type { IncomingMessage, ServerResponse } from "node:http";
import {
  Binding,
  bindRequest,
  contextOf,
  resolvePolicy,
  type RequestContextOptions,
} from "./request-context.js";

/**
 * contextMiddleware returns an Express/Connect middleware that creates each
 * request's context (see {@link requestContext}) before the next middleware
 * runs; any later middleware or handler gets it with `requestContext(req)`.
 * A request that already has one (served by {@link serve}) keeps it.
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
    if (contextOf(req) === undefined) bindRequest(new Binding(req), res, policy);
    next();
  };
}
