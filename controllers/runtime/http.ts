// The metrics and health endpoints. Addresses are Go-style: ":8080" binds every interface,
// "127.0.0.1:8080" one.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { errorMessage } from './api-errors.ts';

export function parseAddress(flag: string, addr: string): { host: string | undefined; port: number } {
  const i = addr.lastIndexOf(':');
  const port = Number(addr.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid ${flag} "${addr}": expected [host]:port, e.g. :8080 or 127.0.0.1:8080`);
  }
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  return { host: host || undefined, port };
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** Serves `routes` by exact path, anything else with `fallback` (or 404). */
export async function listen(
  flag: string,
  addr: string,
  routes: Record<string, Handler>,
  fallback?: Handler,
): Promise<Server> {
  const { host, port } = parseAddress(flag, addr);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = routes[path] ?? fallback;
    if (!route) {
      res.writeHead(404).end('not found\n');
      return;
    }
    Promise.resolve(route(req, res)).catch((err: unknown) => {
      res.writeHead(500).end(`${errorMessage(err)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`${flag} ${addr}: address already in use; stop the process using it or pass another ${flag}`)
          : new Error(`${flag} ${addr}: ${err.message}`),
      );
    });
    server.listen(port, host, () => resolve());
  });
  return server;
}

export function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
