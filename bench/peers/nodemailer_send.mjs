// Peer for the send benchmark: nodemailer sends N messages, each on a new SMTP connection
// (STARTTLS, AUTH XOAUTH2, one message, QUIT) to the local submission server, trusting the test
// CA; prints one JSON line with the per-message latency median, p95 and mean (ms), after 10
// warm-up sends.
//
// usage: node nodemailer_send.mjs HOST PORT CA_FILE USER ACCESS_TOKEN [N]
import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';

const [host, port, ca, user, accessToken, n = '100'] = process.argv.slice(2);
const caPem = readFileSync(ca);
const text = 'Hello from the send benchmark.\r\n'.repeat(20);
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
for (let i = 0; i < 10; i++) await sendOne(-i);
const samples = [];
for (let i = 0; i < Number(n); i++) samples.push(await sendOne(i));
samples.sort((a, b) => a - b);
const pick = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
console.log(JSON.stringify({
  peer: 'nodemailer', messages: samples.length, p50_ms: pick(0.5), p95_ms: pick(0.95),
  mean_ms: samples.reduce((a, b) => a + b, 0) / samples.length,
}));
