// The Echo service of fixtures/echo.proto on a real grpc-js server and
// client on loopback, shared by the gRPC tests.
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** The one message type of the Echo service. */
export interface Message {
  text: string;
  waitMs?: number;
}

const proto = fileURLToPath(new URL("./fixtures/echo.proto", import.meta.url));
// keepCase false, defaults true: `waitMs` reads 0 when the caller left it out.
const definition = protoLoader.loadSync(proto, { keepCase: false, defaults: true });
/** The generated client class; `Echo.service` is the definition to implement. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const Echo = (grpc.loadPackageDefinition(definition) as any).taproot.test
  .Echo as grpc.ServiceClientConstructor;

/** What useEchoServer gives a test file: the client of the running server. */
export interface EchoFixture {
  /** A client on the server's port; read it in tests, after the before() hook ran. */
  readonly client: grpc.Client & Record<string, unknown>;
  /** The server's port on 127.0.0.1, for a test that speaks raw HTTP/2 to it. */
  readonly port: number;
}

/** A running Echo server and a client connected to it. */
export interface RunningEcho {
  readonly server: grpc.Server;
  readonly client: grpc.Client & Record<string, unknown>;
  readonly port: number;
}

/**
 * startEchoServer serves `implementation` of the Echo service on 127.0.0.1 (a
 * free port) and connects a client to it; the caller shuts both down. For a
 * test that ends the server itself (useEchoServer's ends with the file).
 */
export async function startEchoServer(
  implementation: grpc.UntypedServiceImplementation,
): Promise<RunningEcho> {
  const server = new grpc.Server();
  server.addService(Echo.service, implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const client = new Echo(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  ) as RunningEcho["client"];
  return { server, client, port };
}

/**
 * useEchoServer registers a `before` hook that serves `implementation` of
 * the Echo service on 127.0.0.1 (a free port) and connects a client to it,
 * and an `after` hook that closes the client and shuts the server down.
 *
 * @example
 * const echo = useEchoServer(() => ({ say, count: say, collect: say, chat: say }));
 * test("…", () => echo.client.say({ text: "hi" }, (err, reply) => { … }));
 */
export function useEchoServer(
  implementation: () => grpc.UntypedServiceImplementation,
): EchoFixture {
  let server: grpc.Server | undefined;
  let client: (grpc.Client & Record<string, unknown>) | undefined;
  let port = 0;
  before(async () => {
    ({ server, client, port } = await startEchoServer(implementation()));
  });
  after(async () => {
    client?.close();
    const running = server;
    if (running !== undefined)
      await new Promise<void>((resolve) => running.tryShutdown(() => resolve()));
  });
  return {
    get client() {
      if (client === undefined)
        throw new Error("useEchoServer(): client read before the before() hook made it");
      return client;
    },
    get port() {
      if (port === 0)
        throw new Error("useEchoServer(): port read before the before() hook bound it");
      return port;
    },
  };
}
