/** Starting and stopping the HTTP server of the app. */
import type { Server } from 'node:http';
import type Koa from 'koa';

/** Starts `app` on `host:port` (port 0: any free one); resolves once it listens. */
export function listen(app: Koa, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    server.once('listening', () => resolve(server));
    server.once('error', reject);
  });
}

/** Stops accepting connections, closes the open ones, and resolves once the server is closed. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
