// Peer for the send benchmark: nodemailer sends each message on a new SMTP connection
// (STARTTLS, AUTH XOAUTH2, one message, QUIT) to the local submission server, trusting the test
// CA. The latency of one message is from before the connection opens until the server has
// accepted the data (what `sendMail` resolves on; nodemailer sends QUIT without waiting).
//
// usage: node nodemailer_send.mjs HOST PORT CA_FILE USER [N]
//   The access token is the first line of stdin (never on the command line).
//   With N: sends 10 warm-ups, then N messages; prints one JSON line (p50, p95, mean in ms).
//   With N = "serve": sends one message per further stdin line and answers each with its
//   latency in ms, so another benchmark can interleave nodemailer with its own sends.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import nodemailer from 'nodemailer';

const [host, port, ca, user, n = '100'] = process.argv.slice(2);
const caPem = readFileSync(ca);
const text = 'Hello from the send benchmark.\r\n'.repeat(20);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const first = await lines.next();
const accessToken = first.done ? '' : first.value.trim();

async function sendOne(i) {
  const transport = nodemailer.createTransport({
    host, port: Number(port), secure: false, requireTLS: true,
    tls: { ca: caPem, servername: host },
    auth: { type: 'OAuth2', user, accessToken },
  });
  const started = process.hrtime.bigint();
  await transport.sendMail({
    from: user, to: user, subject: `nodemailer bench ${i}`, text,
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  transport.close();
  return ms;
}

if (n === 'serve') {
  let i = 0;
  for (;;) {
    const line = await lines.next();
    if (line.done) break;
    const ms = await sendOne(i++);
    process.stdout.write(`${ms}\n`);
  }
} else {
  for (let i = 0; i < 10; i++) await sendOne(-i);
  const samples = [];
  for (let i = 0; i < Number(n); i++) samples.push(await sendOne(i));
  samples.sort((a, b) => a - b);
  const pick = (q) => samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)];
  console.log(JSON.stringify({
    peer: 'nodemailer', messages: samples.length, p50_ms: pick(0.5), p95_ms: pick(0.95),
    mean_ms: samples.reduce((a, b) => a + b, 0) / samples.length,
  }));
}
process.exit(0);
