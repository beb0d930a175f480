import net from "node:net";

/**
 * A TCP proxy in front of an HTTP server whose network path can be made to fail:
 * `partition()` drops every open connection and accepts new ones without ever
 * answering (requests hang, nothing is refused) until `heal()`; `slowRequests(prefix, ms)` holds each
 * request whose first line starts with `prefix` for `ms` before passing it on (a slow
 * upload; `heldRequests` counts requests being held), other requests on other
 * connections go through at once;
 * `slowResponses(prefix, ms)` passes such requests on at once and holds their answer
 * (`heldResponses` counts answers being held).
 */
export async function startPartitionProxy(targetUrl: string) {
  const target = new URL(targetUrl);
  const sockets = new Set<net.Socket>();
  let partitioned = false;
  let slow: { prefix: string; ms: number } | null = null;
  let slowAnswers: { prefix: string; ms: number } | null = null;
  let heldResponses = 0;
  let heldRequests = 0;
  const starts = (chunk: Buffer, prefix: string) => chunk.subarray(0, prefix.length).toString("latin1") === prefix;
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on("error", () => client.destroy());
    if (partitioned) return; // accepted, never forwarded
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(upstream);
    // Chunks go upstream in order; a held request holds its connection's later chunks.
    let forwarding = Promise.resolve();
    let answering = Promise.resolve();
    let holdAnswer = 0;
    client.on("data", (chunk: Buffer) => {
      const hold = slow && starts(chunk, slow.prefix) ? slow.ms : 0;
      if (slowAnswers && starts(chunk, slowAnswers.prefix)) holdAnswer = slowAnswers.ms;
      if (hold) heldRequests += 1;
      forwarding = forwarding
        .then(() => hold && new Promise((resolve) => setTimeout(resolve, hold)))
        .then(() => {
          if (hold) heldRequests -= 1;
          if (!upstream.destroyed) upstream.write(chunk);
        });
    });
    upstream.on("data", (chunk: Buffer) => {
      const hold = holdAnswer;
      holdAnswer = 0;
      if (hold) heldResponses += 1;
      answering = answering
        .then(() => hold && new Promise((resolve) => setTimeout(resolve, hold)))
        .then(() => {
          if (hold) heldResponses -= 1;
          if (!client.destroyed) client.write(chunk);
        });
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", close);
    upstream.on("error", close).on("close", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    partition(): void {
      partitioned = true;
      for (const socket of sockets) socket.destroy();
    },
    /** Ends a partition: new connections go through again (the hung ones are dropped). */
    heal(): void {
      partitioned = false;
      for (const socket of sockets) socket.destroy();
    },
    slowRequests(prefix: string, ms: number): void {
      slow = { prefix, ms };
    },
    slowResponses(prefix: string, ms: number): void {
      slowAnswers = { prefix, ms };
    },
    get heldResponses() {
      return heldResponses;
    },
    get heldRequests() {
      return heldRequests;
    },
    close(): Promise<void> {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
