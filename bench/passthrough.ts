// The benchmark's baseline, a bare pass-through: each request is piped to an undici Pool pointed at
// the upstream and the answer piped back — no parsing, auth, limits, usage or logging.
// `node bench/passthrough.ts --upstream http://127.0.0.1:PORT --port N`; exits on SIGTERM/SIGINT.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { type Dispatcher, Pool } from 'undici';

const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string' } } });
if (values.upstream === undefined) throw new Error('--upstream URL is required');
const pool = new Pool(values.upstream, { keepAliveTimeout: 30_000 });

// Hop-by-hop headers describe one connection; they must not be copied onto the next one.
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer']);
const endToEnd = (headers: IncomingHttpHeaders) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP.has(name)));

const server = createServer((req, res) => {
  const method = (req.method ?? 'GET') as Dispatcher.HttpMethod;
  const body = method === 'GET' || method === 'HEAD' ? null : req;
  const toClient = ({ statusCode, headers }: Dispatcher.StreamFactoryData) => {
    res.writeHead(statusCode, endToEnd(headers));
    return res;
  };
  pool.stream({ path: req.url ?? '/', method, headers: endToEnd(req.headers), body }, toClient, (err) => {
    if (err === null) return;
    if (res.headersSent) res.destroy();
    else res.writeHead(502).end();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(values.port ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
const stop = () => {
  server.closeAllConnections();
  server.close();
  void pool.close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop).once('SIGINT', stop);
