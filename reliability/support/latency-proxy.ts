import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A TCP proxy on loopback that delays every chunk, both ways, by an adjustable latency. */
export interface LatencyProxy {
  readonly port: number;
  /** Delay added to each chunk from now on (order is kept when it changes). */
  setLatency(ms: number): void;
  close(): Promise<void>;
}

/** Forwards `from` to `to`, each chunk `latency()` ms late, never out of order. */
function forward(from: Socket, to: Socket, latency: () => number): void {
  let lastDue = 0;
  from.on('data', (chunk: Buffer) => {
    const due = Math.max(Date.now() + latency(), lastDue);
    lastDue = due;
    setTimeout(() => {
      if (!to.destroyed) to.write(chunk);
    }, due - Date.now());
  });
}

/** Starts a proxy to `127.0.0.1:targetPort` on a free loopback port. */
export async function startLatencyProxy(targetPort: number): Promise<LatencyProxy> {
  let latency = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect({ port: targetPort, host: '127.0.0.1' });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    forward(client, upstream, () => latency);
    forward(upstream, client, () => latency);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    setLatency(ms) {
      latency = ms;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
