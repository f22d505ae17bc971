// Sends N GET requests one after another on one keep-alive connection and exits 0 once all N are
// answered (1 on a closed connection or a failed answer). Drives the server in count-instructions.sh.
// A raw socket rather than fetch: the request carries only Host, like wrk's, so the server's work per
// request is what the bench measures, not a browser-like set of headers.
// Usage: node sequential-client.mjs PORT N [PATH]
import { connect } from 'node:net';

const [port, total, path = '/api/hello'] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const request = `GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`;
const socket = connect(port, '127.0.0.1');
let answered = 0;
let pending = Buffer.alloc(0);

/** The length of the first whole answer in `bytes` (headers plus Content-Length body), or 0. */
function answerLength(bytes) {
  const headerEnd = bytes.indexOf('\r\n\r\n');
  if (headerEnd < 0) return 0;
  const head = bytes.subarray(0, headerEnd).toString('latin1');
  if (!/^HTTP\/1\.1 2\d\d /.test(head)) throw new Error(`not a 2xx answer: ${head.split('\r\n', 1)[0]}`);
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1]);
  if (!Number.isInteger(length)) throw new Error('answer without Content-Length');
  return bytes.length >= headerEnd + 4 + length ? headerEnd + 4 + length : 0;
}

socket.on('connect', () => socket.write(request));
socket.on('data', (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  for (let length = answerLength(pending); length > 0; length = answerLength(pending)) {
    pending = pending.subarray(length);
    answered += 1;
    if (answered === total) return socket.end();
    socket.write(request);
  }
});
socket.on('error', (error) => {
  console.error(`sequential-client: ${error.message}`);
  process.exitCode = 1;
});
socket.on('close', () => {
  if (answered !== total) {
    console.error(`sequential-client: ${answered} of ${total} answered`);
    process.exitCode = 1;
  }
});
