/**
 * taproot-context/fastify: taproot contexts for Fastify 5. Register
 * {@link contextPlugin} and every request has `request.ctx`, canceled when
 * the client leaves, at its deadline and when `app.close()` runs out of
 * patience; `app.close()` drains like taproot/node's `serve()`.
 *
 * @packageDocumentation
 */

export { contextPlugin, type ContextPluginOptions, type TaprootFastify } from "./plugin.js";
