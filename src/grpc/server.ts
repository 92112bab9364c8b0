import type { CancelFunc, Context } from "../index.js";
import { background } from "../index.js";
import { checkContext, checkOptions, describeValue, isContext } from "../validate.js";
import { newCallContext, type CallCtx } from "./call-context.js";
import { toStatus } from "./status.js";
import type { GrpcStatus, ServerCall, ServerWritable } from "./types.js";

const DISPOSE: typeof Symbol.dispose =
  Symbol.dispose ?? (Symbol.for("Symbol.dispose") as typeof Symbol.dispose);

/**
 * callContext returns the context of a grpc-js server call, a child of
 * `parent`, and the function that ends it. It is the counterpart of the
 * `ctx` a Go gRPC handler receives. The context is done
 * - at the caller's deadline (`call.getDeadline()`): err `DeadlineExceeded`;
 * - when the client cancels the call or its connection goes away before the
 *   call finished: err `Canceled`, cause {@link CallCancelledError};
 * - when `parent` is done;
 * - when you call the returned function, as the call finishes: err
 *   `Canceled`, no other cause, like Go's context once the handler returns.
 *
 * grpc-js emits `"cancelled"` in all three of its own cases (after a status
 * was sent, at the deadline, on a client cancel). callContext tells them
 * apart: an event at the deadline reads as the deadline, and one after the
 * call finished is ignored. A client cancel that arrives less than 50 ms
 * before the deadline counts as the deadline, reached when it comes: that
 * is how a client's own deadline reaches the server (grpc-timeout is
 * relative, so the server's deadline trails the client's by the transit).
 * The deadline itself costs no timer: grpc-js's own, which sends
 * DEADLINE_EXCEEDED, ends the call and with it the context.
 *
 * Call the returned function as soon as the call is done, before grpc-js
 * sends the status (before `callback(...)` or `call.end()`): it removes the
 * listener. {@link handleUnary} and {@link handleServerStream} do it for
 * you.
 *
 * @example
 * ```ts
 * function getUser(call: ServerUnaryCall<GetUserRequest, User>, callback: sendUnaryData<User>) {
 *   const [ctx, finish] = callContext(appCtx, call);
 *   users.load(ctx, call.request.id).then(
 *     (user) => (finish(), callback(null, user)),
 *     (err) => (finish(), callback(err)),
 *   );
 * }
 * ```
 */
export function callContext(parent: Context, call: ServerCall): [Context, CancelFunc] {
  const fn = "callContext(parent, call)";
  checkContext(fn, "parent", parent);
  if (
    call === null ||
    typeof call !== "object" ||
    typeof (call as Partial<ServerCall>).getDeadline !== "function" ||
    typeof (call as Partial<ServerCall>).on !== "function"
  ) {
    throw new TypeError(
      `${fn}: call must be a grpc-js server call (the first argument of a handler), got ${describeValue(call)}`,
    );
  }
  const ctx = newCallContext(parent, call, fn);
  const finish = endCall.bind(ctx) as CancelFunc;
  finish[DISPOSE] = finish;
  return [ctx, finish];
}

function endCall(this: CallCtx): void {
  this.end();
}

/**
 * HandlerOptions configure the handlers that {@link handleUnary} and its
 * siblings make.
 *
 * @example
 * ```ts
 * server.addService(service, { getUser: handleUnary(getUser, { context: appCtx }) });
 * ```
 */
export interface HandlerOptions {
  /** The parent of every call's context: its values are visible, its cancellation reaches each call. Default `background()`. */
  context?: Context;
}

/** The grpc-js callback of a unary or client-streaming handler (`sendUnaryData`). */
type Respond<Res> = (error: GrpcStatus | null, value?: Res | null) => void;

function parentOf(fn: string, options: HandlerOptions | undefined): Context {
  if (isContext(options)) {
    throw new TypeError(
      `${fn}: options must be an object, got a Context; pass { context: ctx } to make it the parent of every call's context`,
    );
  }
  const parent = checkOptions(fn, options)?.context;
  if (parent === undefined) return background();
  checkContext(fn, "options.context", parent);
  return parent;
}

function checkHandler(fn: string, f: unknown): void {
  if (typeof f !== "function") {
    throw new TypeError(
      `${fn}: handler must be a function (ctx, call) => result, got ${describeValue(f)}`,
    );
  }
}

/**
 * run calls `handler(ctx, call)` and hands its outcome (or what it threw) to
 * `ok`/`fail`, with `to` (where the outcome goes: the unary callback, or the
 * stream): synchronously when it returns a plain value, so a handler that
 * does not return a promise costs no promise and no closure.
 */
function run<C, T, To>(
  ctx: CallCtx,
  handler: (ctx: Context, call: C) => T | PromiseLike<T>,
  call: C,
  to: To,
  ok: (ctx: CallCtx, to: To, value: T) => void,
  fail: (ctx: CallCtx, to: To, err: unknown) => void,
): void {
  let r: T | PromiseLike<T>;
  try {
    r = handler(ctx, call);
  } catch (err) {
    fail(ctx, to, err);
    return;
  }
  if (r !== null && typeof (r as PromiseLike<T>)?.then === "function") {
    (r as PromiseLike<T>).then(
      (v) => ok(ctx, to, v),
      (e: unknown) => fail(ctx, to, e),
    );
  } else ok(ctx, to, r as T);
}

function replied<Res>(ctx: CallCtx, callback: Respond<Res>, value: Res): void {
  ctx.end();
  callback(null, value);
}

function failed<Res>(ctx: CallCtx, callback: Respond<Res>, err: unknown): void {
  ctx.end();
  callback(toStatus(err));
}

/**
 * handleUnary turns `handler(ctx, call)`, which returns the response (or a
 * promise of it), into a grpc-js unary handler: `ctx` is the call's
 * {@link callContext}, ended when the handler settles. A thrown
 * `DeadlineExceeded` or `Canceled` is sent as DEADLINE_EXCEEDED or
 * CANCELLED; an error whose `code` is a gRPC error status, 1 to 16 (a
 * grpc-js `ServiceError` or `{ code, details }`), as that status; anything
 * else, a DOMException or a `code` of 0 among them, as UNKNOWN.
 *
 * @example
 * ```ts
 * server.addService(UserService, {
 *   getUser: handleUnary(async (ctx, call: ServerUnaryCall<GetUserRequest, User>) => {
 *     return await users.load(ctx, call.request.id); // stops when the caller gives up
 *   }),
 * });
 * ```
 */
export function handleUnary<C extends ServerCall, Res>(
  handler: (ctx: Context, call: C) => Res | PromiseLike<Res>,
  options?: HandlerOptions,
): (call: C, callback: Respond<Res>) => void {
  const fn = "handleUnary(handler, options)";
  checkHandler(fn, handler);
  const parent = parentOf(fn, options);
  return (call, callback) =>
    run(newCallContext(parent, call, fn), handler, call, callback, replied, failed);
}

/**
 * handleClientStream is {@link handleUnary} for client-streaming methods:
 * the handler reads `call` (a `ServerReadableStream`) and returns the one
 * response.
 *
 * @example
 * ```ts
 * upload: handleClientStream(async (ctx, call: ServerReadableStream<Chunk, Summary>) => {
 *   let bytes = 0;
 *   for await (const chunk of call) bytes += chunk.data.length;
 *   return { bytes };
 * }),
 * ```
 */
export const handleClientStream: typeof handleUnary = handleUnary;

/**
 * handleServerStream turns `handler(ctx, call)`, which writes responses to
 * `call` and resolves when it has written the last, into a grpc-js
 * server-streaming handler: `ctx` is the call's {@link callContext}; the
 * stream is ended when the handler resolves, or ends with the status of
 * what it threw (as {@link handleUnary} maps it). When the client cancels,
 * `ctx` is done and the handler should stop writing.
 *
 * @example
 * ```ts
 * watch: handleServerStream(async (ctx, call: ServerWritableStream<WatchRequest, Event>) => {
 *   for await (const at of ticker(ctx, 1_000)) call.write({ at });
 * }),
 * ```
 */
export function handleServerStream<C extends ServerWritable>(
  handler: (ctx: Context, call: C) => void | PromiseLike<void>,
  options?: HandlerOptions,
): (call: C) => void {
  const fn = "handleServerStream(handler, options)";
  checkHandler(fn, handler);
  const parent = parentOf(fn, options);
  return (call) =>
    run(newCallContext(parent, call, fn), handler, call, call, streamEnded, streamFailed);
}

function streamEnded(ctx: CallCtx, call: ServerWritable): void {
  ctx.end();
  if (!call.destroyed) call.end();
}

function streamFailed(ctx: CallCtx, call: ServerWritable, err: unknown): void {
  ctx.end();
  // grpc-js's own "error" listener ends the stream with this status.
  if (!call.destroyed) call.emit("error", toStatus(err));
}

/**
 * handleBidiStream is {@link handleServerStream} for bidirectional methods:
 * the handler reads and writes `call` (a `ServerDuplexStream`). Read it
 * with `call.iterator({ destroyOnReturn: false })`: a plain `for await`
 * destroys the stream when the loop ends, and a destroyed stream can no
 * longer send its status.
 *
 * @example
 * ```ts
 * chat: handleBidiStream(async (ctx, call: ServerDuplexStream<Message, Message>) => {
 *   for await (const m of call.iterator({ destroyOnReturn: false })) {
 *     call.write(await answer(ctx, m));
 *   }
 * }),
 * ```
 */
export const handleBidiStream: typeof handleServerStream = handleServerStream;
