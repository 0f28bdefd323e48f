// The "bare" scenario of npm run bench: the least an ARI application can do to route a call, as a
// floor for the service's figures on the same machine in the same run. On StasisStart it asks the
// instant API (a kept-alive connection, Node's own http), and sends `continue` on the event
// WebSocket as the service does; no log, no store, no metrics, no checks. Its own process, so its
// CPU is measured apart. It keeps each call's latency, Asterisk's StasisStart timestamp to the
// continue's answer, as the service's `sinceStasisStart` histogram does, and hands them over when
// asked ('latencies').
// usage: node bare-ari.js ARI_URL APP API_PORT (ARI_USER and ARI_PASSWORD in the environment)
import http from 'node:http';
import WebSocket from 'ws';

const [ariUrl, app, apiPort] = process.argv.slice(2);
const auth = 'Basic ' + Buffer.from(`${process.env.ARI_USER}:${process.env.ARI_PASSWORD}`).toString('base64');
const ari = new URL(ariUrl);
const agent = new http.Agent({ keepAlive: true });
let latencies = [];
let seq = 0;
const waiting = new Map();

const ws = new WebSocket(`${ariUrl.replace(/^http/, 'ws')}/ari/events?app=${encodeURIComponent(app)}`, { headers: { authorization: auth } });
ws.on('error', (e) => fail(`ARI WebSocket: ${e.message}`));
ws.on('close', () => fail('ARI WebSocket closed'));
ws.on('open', () => {
  // the service's filter, so that Asterisk sends both of them the same events
  const allowed = ['StasisStart', 'StasisEnd', 'RESTResponse', 'ChannelHangupRequest', 'ChannelDestroyed'].map((type) => ({ type }));
  const req = http.request(
    { host: ari.hostname, port: ari.port, path: `/ari/applications/${encodeURIComponent(app)}/eventFilter`, method: 'PUT', agent, headers: { authorization: auth, 'content-type': 'application/json' } },
    (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? process.send?.({ ready: true }) : fail(`event filter: ${res.statusCode}`)));
    },
  );
  req.on('error', (e) => fail(`event filter: ${e.message}`));
  req.end(JSON.stringify({ allowed }));
});

ws.on('message', (data) => {
  const ev = JSON.parse(data.toString('utf8'));
  if (ev.type === 'RESTResponse') {
    const done = waiting.get(ev.request_id);
    waiting.delete(ev.request_id);
    done?.(ev.status_code);
  } else if (ev.type === 'StasisStart') route(ev);
});

function route(ev) {
  // 2026-12-04T10:00:00.123+0000: Date.parse wants a colon in the offset
  const startedAt = Date.parse(ev.timestamp.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
  const id = ev.channel.id;
  const path = `/route?arayan_no=${encodeURIComponent(ev.channel.caller.number)}&aranan_no=${encodeURIComponent(ev.channel.dialplan.exten)}`;
  const req = http.get({ host: '127.0.0.1', port: Number(apiPort), path, agent }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (body += d));
    res.on('end', () => {
      const to = JSON.parse(body).redirect;
      const rid = String(++seq);
      waiting.set(rid, (status) => status < 300 && latencies.push(Date.now() - startedAt));
      const uri = `channels/${encodeURIComponent(id)}/continue?context=bench-dest&extension=${encodeURIComponent(to)}&priority=1`;
      ws.send(JSON.stringify({ type: 'RESTRequest', transaction_id: rid, request_id: rid, method: 'POST', uri }));
    });
  });
  req.on('error', () => undefined); // the call then stays in Stasis, and SIPp counts it failed
}

process.on('message', (m) => {
  if (m !== 'latencies') return;
  process.send?.({ latencies });
  latencies = [];
});
process.on('disconnect', () => process.exit(0));

function fail(why) {
  process.send?.({ error: why });
  process.exit(1);
}
