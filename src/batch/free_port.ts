/**
 * A TCP port free on 127.0.0.1 at the time of asking (the kernel picks it for
 * a listener on port 0, which is then closed): where the tests and the batch
 * benchmark start their own redis-server.
 */
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}
