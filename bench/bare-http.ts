/**
 * The ceiling for the OCSP benchmark: a bare node:http server that answers every request with a fixed
 * 500-byte body (about the size of a pre-signed OCSP answer), in the same number of processes as
 * tierca (node:cluster with the same defaults as server/cluster.ts). POST bodies are read before
 * answering, as the OCSP route does. Prints "listening <pid>" once per serving process.
 *
 *   node --import tsx bench/bare-http.ts <port> <processes>
 */
import cluster from 'node:cluster';
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const processes = Number(process.argv[3] ?? 1);
const BODY = Buffer.alloc(500, 0x5a);

function serve(): void {
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const answer = () => res.writeHead(200, { 'content-type': 'application/ocsp-response', 'content-length': BODY.length }).end(BODY);
    if (req.method === 'POST') {
      req.on('data', () => undefined);
      req.on('end', answer);
    } else {
      answer();
    }
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${process.pid}\n`));
  process.once('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

if (processes > 1 && cluster.isPrimary) {
  for (let i = 0; i < processes; i++) cluster.fork();
  process.once('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
    setTimeout(() => process.exit(0), 1000).unref();
  });
} else {
  serve();
}
