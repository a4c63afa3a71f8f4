// Minimal HTTP server for the unicast baseline: serves one file at /image.
//   node http-server.js FILE PORT ADDRESS
// Prints LISTENING once it accepts connections.

import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';

const [file, port, address] = process.argv.slice(2);
if (!file || !port || !address) {
  process.stderr.write('usage: http-server.js FILE PORT ADDRESS\n');
  process.exit(2);
}
const size = statSync(file).size;
const server = createServer((req, res) => {
  if (req.method !== 'GET' || req.url !== '/image') {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(res);
});
server.listen(Number(port), address, () => process.stdout.write('LISTENING\n'));
process.on('SIGTERM', () => process.exit(0));
