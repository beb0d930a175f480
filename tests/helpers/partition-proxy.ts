import net from "node:net";

/**
 * A TCP proxy in front of a server that can be cut off: after `partition()` every open
 * connection is dropped and new ones are accepted but never answered, as when a network
 * path to the server dies (requests hang, nothing is refused).
 */
export async function startPartitionProxy(targetUrl: string) {
  const target = new URL(targetUrl);
  const sockets = new Set<net.Socket>();
  let partitioned = false;
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on("error", () => client.destroy());
    if (partitioned) return; // accepted, never forwarded
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(upstream);
    client.pipe(upstream).pipe(client);
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
    close(): Promise<void> {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
