/**
 * A closed-loop HTTP/1.1 load generator whose connections stay open between
 * rounds (bench/node-load.ts): a round only starts and stops the requests,
 * so rounds of half a second measure requests, not connection set-up,
 * process start-up or warm-up, and several servers can be loaded in turn,
 * many times, each keeping its own warm connections.
 *
 * Each connection sends `GET <path>` with one request in flight (as
 * autocannon with `pipelining: 1`), the next as soon as an answer is
 * complete. Answers are read by their Content-Length, which every server of
 * the bench sends (`res.end("ok")`); any other answer, a status other than
 * 200 or a connection lost mid-request counts as an error.
 */
import { connect, type Socket } from "node:net";

/** What one round did: answers received, errors, and how long requests were sent. */
export interface LoadResult {
  responses: number;
  errors: number;
  seconds: number;
}

const HEADER_END = Buffer.from("\r\n\r\n");
const contentLength = /\r\ncontent-length: *(\d+)/i;

/** Conn is one keep-alive connection and what it has received of the current answer. */
class Conn {
  /** Received bytes not yet part of a complete answer; null when none. */
  pending: Buffer | null = null;
  /** Set while a request of ours is unanswered. */
  waiting = false;
  closed = false;

  constructor(readonly socket: Socket) {}
}

export class KeepAliveLoad {
  readonly #request: Buffer;
  #conns: Conn[] = [];
  /** Set during a round: an answer is followed by the next request. */
  #active = false;
  #inFlight = 0;
  #responses = 0;
  #errors = 0;
  /** Resolves the current round once its last answer is in; set while a round drains. */
  #drained: (() => void) | null = null;

  constructor(
    readonly port: number,
    readonly connections: number,
    path = "/",
  ) {
    this.#request = Buffer.from(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
      "latin1",
    );
  }

  /** open connects every connection not open yet (the first time, or again after a server closed one). */
  async open(): Promise<void> {
    const live = this.#conns.filter((c) => !c.closed);
    const missing = this.connections - live.length;
    const fresh = await Promise.all(Array.from({ length: missing }, () => this.#connect()));
    this.#conns = [...live, ...fresh];
  }

  /** run keeps every connection busy for `ms`, then waits for the answers still due. */
  async run(ms: number): Promise<LoadResult> {
    await this.open();
    this.#responses = 0;
    this.#errors = 0;
    this.#active = true;
    const t0 = performance.now();
    for (const c of this.#conns) this.#send(c);
    await new Promise((r) => setTimeout(r, ms));
    this.#active = false;
    const seconds = (performance.now() - t0) / 1000;
    if (this.#inFlight > 0) await new Promise<void>((r) => (this.#drained = r));
    return { responses: this.#responses, errors: this.#errors, seconds };
  }

  close(): void {
    for (const c of this.#conns) c.socket.destroy();
    this.#conns = [];
  }

  #connect(): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.port, "127.0.0.1");
      socket.setNoDelay(true);
      const c = new Conn(socket);
      socket.once("connect", () => {
        socket.off("error", reject);
        socket.on("error", () => {}); // 'close' follows, and says it
        resolve(c);
      });
      socket.once("error", reject);
      socket.on("data", (chunk: Buffer) => this.#read(c, chunk));
      socket.on("close", () => {
        c.closed = true;
        if (c.waiting) this.#answered(c, false);
      });
    });
  }

  #send(c: Conn): void {
    c.waiting = true;
    this.#inFlight++;
    c.socket.write(this.#request);
  }

  #read(c: Conn, chunk: Buffer): void {
    let buf = c.pending === null ? chunk : Buffer.concat([c.pending, chunk]);
    for (;;) {
      const headerEnd = buf.indexOf(HEADER_END);
      if (headerEnd < 0) break;
      const head = buf.toString("latin1", 0, headerEnd);
      const length = contentLength.exec(head);
      if (length === null) {
        // Not an answer this generator can delimit: give up on the connection.
        c.socket.destroy();
        c.pending = null;
        return;
      }
      const end = headerEnd + HEADER_END.length + Number(length[1]);
      if (buf.length < end) break;
      this.#answered(c, head.startsWith("HTTP/1.1 200 "));
      buf = buf.subarray(end);
    }
    c.pending = buf.length === 0 ? null : buf;
  }

  #answered(c: Conn, ok: boolean): void {
    c.waiting = false;
    this.#inFlight--;
    if (ok) this.#responses++;
    else this.#errors++;
    if (this.#active && !c.closed) this.#send(c);
    else if (this.#inFlight === 0 && this.#drained !== null) {
      const drained = this.#drained;
      this.#drained = null;
      drained();
    }
  }
}
