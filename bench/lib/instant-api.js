// The "instant local routing API" of npm run bench: every request, whatever it carries, is
// answered at once with the same route (extension 900 of [bench-dest]). Its own process, so its
// CPU is not charged to the service, and the same server for the dialplan peer and the service.
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 18099);
const body = JSON.stringify({ status: 'success', result: 'extension', redirect: '900' });
const headers = { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) };
let requests = 0;

const server = createServer((req, res) => {
  // the request body (form, JSON, XML) is read and dropped: the answer never depends on it
  req.resume();
  req.on('end', () => {
    requests += 1;
    res.writeHead(200, headers);
    res.end(body);
  });
});
server.keepAliveTimeout = 30_000;
// CURL() opens a connection per call: a deep backlog keeps bursts from being refused
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => process.send?.({ ready: true, port }));
server.on('error', (e) => {
  process.send?.({ error: e.message });
  process.exit(1);
});
process.on('message', (m) => {
  if (m === 'count') process.send?.({ requests });
});
process.on('disconnect', () => process.exit(0));
