import type { ChildNode, Listener, Owner } from "../child-list.js";
import { unlink } from "../child-list.js";
import { deadlineOf } from "../context.js";
import { DeadlineExceeded, afterFunc, type Context } from "../index.js";
import { attach } from "../propagate.js";
import { checkContext, checkOptions, describeValue, isContext } from "../validate.js";
import { DEADLINE_SLACK_MS, Status, deadlinePassed, epochMs } from "./status.js";
import type { ClientCall, ClientCallOptions, GrpcStatus } from "./types.js";

/**
 * callOptions returns grpc-js call options whose `deadline` is the earlier
 * of `ctx`'s and `options.deadline`, with the other options as given. grpc-js
 * sends it to the server as `grpc-timeout` and fails the call with
 * DEADLINE_EXCEEDED when it passes. Pair it with {@link bindCall} so the
 * call also ends when `ctx` is canceled.
 *
 * @example
 * ```ts
 * const stream = bindCall(ctx, client.watch({ topic }, callOptions(ctx)));
 * for await (const event of stream) handle(event);
 * ```
 */
export function callOptions<O extends ClientCallOptions>(ctx: Context, options?: O): O {
  const fn = "callOptions(ctx, options)";
  checkContext(fn, "ctx", ctx);
  if (isContext(options)) {
    throw new TypeError(
      `${fn}: options must be grpc-js call options, got a Context; pass one context, as ctx, and the call's options (or nothing) after it`,
    );
  }
  const mine = ctx.deadline();
  const given = checkOptions(fn, options) ?? ({} as O);
  if (mine === undefined || epochMs(given.deadline) <= mine.getTime()) return given;
  return { ...given, deadline: mine };
}

/**
 * bindCall ties a grpc-js client call to `ctx` and returns the call: when
 * `ctx` is done before the call's status arrives, the call is canceled
 * (`call.cancel()`, which resets the stream; the server's context reads
 * `Canceled`). The tie is released when the status arrives. A `ctx` that is
 * already done cancels the call at once. At `ctx`'s deadline, the call is
 * left a few milliseconds to end with grpc-js's own DEADLINE_EXCEEDED (pass
 * {@link callOptions} so it has that deadline) before it is canceled.
 *
 * @example
 * ```ts
 * const call = bindCall(ctx, client.chat(callOptions(ctx)));
 * call.write({ text: "hi" });
 * ```
 */
export function bindCall<C extends ClientCall>(ctx: Context, call: C): C {
  const fn = "bindCall(ctx, call)";
  checkContext(fn, "ctx", ctx);
  if (
    call === null ||
    typeof call !== "object" ||
    typeof (call as Partial<ClientCall>).cancel !== "function" ||
    typeof (call as Partial<ClientCall>).on !== "function"
  ) {
    throw new TypeError(
      `${fn}: call must be a grpc-js client call (what a client method returns), got ${describeValue(call)}`,
    );
  }
  // No ctx.done() === null shortcut: done() would make the promise that
  // afterFunc does without.
  if (ctx.err() !== null) {
    call.cancel();
    return call;
  }
  // Set while a deadline's cancel waits for grpc-js's own deadline timer.
  let grace: ReturnType<typeof setTimeout> | undefined;
  const stop = afterFunc(ctx, () => {
    // At the deadline, grpc-js's own timer (set by callOptions) ends the call
    // with DEADLINE_EXCEEDED, as the caller expects; a cancel() now would beat
    // it and read CANCELLED. Cancel only if it has not within the slack.
    if (ctx.err() === DeadlineExceeded) grace = setTimeout(() => call.cancel(), DEADLINE_SLACK_MS);
    else call.cancel();
  });
  const ended = (): void => {
    call.removeListener("status", ended);
    if (grace !== undefined) clearTimeout(grace);
    stop();
  };
  call.on("status", ended);
  return call;
}

/** The grpc-js callback of a unary client method (`requestCallback`). */
type Callback<Res> = (error: (Error & Partial<GrpcStatus>) | null, value?: Res) => void;

/**
 * UnaryWatch is one unary call of {@link unaryCall} under its context: a
 * child of the context, as an afterFunc is, so that the context's end
 * cancels the call; released when the call's callback runs, which is also
 * when its status has arrived. It is bindCall for a unary call without the
 * `"status"` listener, the afterFunc closure and its stop function.
 */
class UnaryWatch<Res> implements Listener {
  /** Neighbours and list in the context's children; set by attach, cleared by unlink in settle() or when the context is done. */
  _prev: ChildNode | null = null;
  _next: ChildNode | null = null;
  _owner: Owner | null = null;
  /** The call, once grpc-js made it. */
  call: ClientCall | null = null;
  /** Set when the callback ran: the call is over, a context that ends later changes nothing. */
  settled = false;
  /** Set while a deadline's cancel waits for grpc-js's own deadline timer; cleared by settle(). */
  grace: ReturnType<typeof setTimeout> | undefined = undefined;

  constructor(
    // eslint-disable-next-line taproot/no-stored-context -- lives exactly as long as its call
    readonly ctx: Context,
    readonly deadline: number,
    readonly resolve: (value: Res) => void,
    readonly reject: (reason: unknown) => void,
  ) {}

  /** The context is done: cancel the call, after grpc-js's own deadline has had its chance. */
  _fire(error: Error): void {
    if (this.settled) return;
    // At the deadline, grpc-js's own timer (callOptions gave it the
    // deadline) ends the call with DEADLINE_EXCEEDED, as the caller
    // expects; a cancel() now would beat it and read CANCELLED.
    if (error === DeadlineExceeded) this.grace = setTimeout(cancelCall, DEADLINE_SLACK_MS, this);
    // Never inside the cancel() that got us here.
    else queueMicrotask(() => cancelCall(this));
  }

  settle(err: (Error & Partial<GrpcStatus>) | null, value: Res | undefined): void {
    this.settled = true;
    const owner = this._owner;
    if (owner !== null) unlink(owner, this);
    if (this.grace !== undefined) clearTimeout(this.grace);
    const ctx = this.ctx;
    if (err === null) this.resolve(value as Res);
    else if (ctx.err() !== null) this.reject(ctx.err());
    // grpc-js's deadline timer may beat the context's by a millisecond.
    else if (err.code === Status.DEADLINE_EXCEEDED && deadlinePassed(this.deadline)) {
      this.reject(DeadlineExceeded);
    } else this.reject(err);
  }
}

function cancelCall(w: { settled: boolean; call: ClientCall | null }): void {
  if (!w.settled) w.call?.cancel();
}

/**
 * unaryCall calls the unary method `method` of a grpc-js `client` under
 * `ctx` and returns the response: the call carries `ctx`'s deadline
 * ({@link callOptions}) and is canceled when `ctx` is done
 * ({@link bindCall}). When the call fails because of `ctx`, the promise
 * rejects with `ctx.err()` (`DeadlineExceeded` at the deadline, `Canceled`
 * otherwise), as a Go client's `err` reads; any other failure rejects with
 * grpc-js's `ServiceError`. A `ctx` already done rejects without a call.
 * `metadata`, when given, is a grpc-js `Metadata` (pass `undefined` to give
 * `options` without it). A streaming method rejects with a TypeError: call
 * it yourself with {@link callOptions} and pass the call to
 * {@link bindCall}.
 *
 * @example
 * ```ts
 * const [ctx, cancel] = withTimeout(parent, 500);
 * try {
 *   const user = await unaryCall<User>(ctx, users, "getUser", { id: 42 });
 * } finally {
 *   cancel();
 * }
 * ```
 */
export function unaryCall<Res = unknown>(
  ctx: Context,
  client: object,
  method: string,
  request: unknown,
  metadata?: object,
  options?: ClientCallOptions,
): Promise<Res> {
  const fn = "unaryCall(ctx, client, method, request)";
  checkContext(fn, "ctx", ctx);
  const f = (client as Record<string, unknown> | null | undefined)?.[method] as
    (((...args: unknown[]) => unknown) & StreamFlags) | undefined;
  if (typeof f !== "function") {
    return Promise.reject(
      new TypeError(
        `${fn}: client.${String(method)} must be a unary method of a grpc-js client, got ${describeValue(f)}`,
      ),
    );
  }
  const wrong = badArguments(fn, method, f, metadata, options);
  if (wrong !== null) return Promise.reject(wrong);
  const before = ctx.err();
  if (before !== null) return Promise.reject(before);
  // callOptions' rule, on epoch ms: no Date made per call (grpc-js takes either).
  const mine = deadlineOf(fn, ctx) ?? Infinity;
  const given = epochMs(options?.deadline);
  const deadline = Math.min(mine, given);
  const opts: ClientCallOptions = mine >= given ? (options ?? {}) : { ...options, deadline: mine };
  return new Promise<Res>((resolve, reject) => {
    const w = new UnaryWatch<Res>(ctx, deadline, resolve, reject);
    const done: Callback<Res> = (err, value) => w.settle(err, value);
    try {
      w.call = (
        metadata === undefined
          ? f.call(client, request, opts, done)
          : f.call(client, request, metadata, opts, done)
      ) as ClientCall;
    } catch (err) {
      // grpc-js checks its arguments with instanceof: a Metadata made by
      // another copy of @grpc/grpc-js than the client's passes the check
      // above and fails there.
      w.settled = true;
      reject(refused(fn, method, err));
      return;
    }
    // As bindCall: the context's end cancels the call; a context done by now cancels it at once.
    if (!w.settled) attach(fn, "ctx", w, ctx);
  });
}

/** The flags grpc-js sets on every method of a generated client (make-client.ts). */
interface StreamFlags {
  requestStream?: unknown;
  responseStream?: unknown;
}

/** How to call each kind of streaming method instead, for unaryCall's error. */
const INSTEAD: Record<string, string> = {
  "server-streaming": "(request, callOptions(ctx))",
  "client-streaming": "(callOptions(ctx), callback)",
  bidirectional: "(callOptions(ctx))",
};

/**
 * badArguments returns the TypeError for what unaryCall cannot call, or
 * null: a method that streams (grpc-js marks each method
 * of a generated client with `requestStream`/`responseStream`; called as
 * unary, a server stream never answers and a client stream throws grpc-js's
 * bare "Incorrect arguments passed"), metadata that is no grpc-js Metadata
 * (grpc-js tells the two optional arguments apart by instanceof), or options
 * that are no object.
 */
function badArguments(
  fn: string,
  method: string,
  f: StreamFlags,
  metadata: unknown,
  options: unknown,
): TypeError | null {
  const name = `client.${String(method)}`;
  if (f.requestStream === true || f.responseStream === true) {
    const kind =
      f.requestStream !== true
        ? "server-streaming"
        : f.responseStream !== true
          ? "client-streaming"
          : "bidirectional";
    return new TypeError(
      `${fn}: ${name} is a ${kind} method, and unaryCall calls unary methods only; call ${name}${INSTEAD[kind]} and pass the call to bindCall(ctx, call)`,
    );
  }
  if (metadata !== undefined && !isMetadata(metadata)) {
    return new TypeError(
      `${fn}: metadata must be a grpc-js Metadata (new grpc.Metadata()), got ${describeValue(metadata)}; pass undefined for none (call options go after it: unaryCall(ctx, client, method, request, undefined, options))`,
    );
  }
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    return new TypeError(
      `${fn}: options must be an object of grpc-js call options, got ${describeValue(options)}; leave it out for the defaults`,
    );
  }
  return null;
}

/** isMetadata tells a grpc-js Metadata by its methods (another copy of grpc-js makes another class). */
function isMetadata(value: unknown): boolean {
  const m = value as { getMap?: unknown; clone?: unknown } | null;
  return (
    typeof value === "object" &&
    m !== null &&
    typeof m.getMap === "function" &&
    typeof m.clone === "function"
  );
}

/** refused wraps what grpc-js threw at unaryCall's arguments in an error that names unaryCall. */
function refused(fn: string, method: string, err: unknown): unknown {
  if (!(err instanceof Error) || err.message !== "Incorrect arguments passed") return err;
  return new TypeError(
    `${fn}: client.${String(method)} refused its arguments ("${err.message}"); metadata must be a Metadata of the same @grpc/grpc-js the client was made with`,
    { cause: err },
  );
}
