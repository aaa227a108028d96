// Peer for the sync benchmark: imapflow (Node) reads every message of a mailbox with one
// `UID FETCH 1:* BODY.PEEK[]` (fetch with `source: true`) over implicit TLS (XOAUTH2), trusting
// the test CA, and prints one JSON line: messages, bytes, seconds, CPU seconds and peak RSS.
//
// usage: node imapflow_fetch.mjs HOST PORT CA_FILE USER ACCESS_TOKEN   (npm install here first)
import { readFileSync } from 'node:fs';
import { ImapFlow } from 'imapflow';

const [host, port, ca, user, accessToken] = process.argv.slice(2);
const started = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
const client = new ImapFlow({
  host, port: Number(port), secure: true,
  tls: { ca: readFileSync(ca), servername: host },
  auth: { user, accessToken },
  logger: false,
});
await client.connect();
const lock = await client.getMailboxLock('INBOX', { readOnly: true });
let messages = 0;
let bytes = 0;
try {
  for await (const msg of client.fetch('1:*', { uid: true, source: true }, { uid: true })) {
    messages += 1;
    bytes += msg.source.length;
  }
} finally {
  lock.release();
}
await client.logout();
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({
  peer: 'imapflow', messages, bytes, seconds,
  cpu_seconds: (cpu.user + cpu.system) / 1e6,
  peak_rss_kb: process.resourceUsage().maxRSS,
}));
