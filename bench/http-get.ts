// Fallback HTTP client for the unicast baseline when curl is missing: node http-get.js URL OUT
import { createWriteStream } from 'node:fs';
import { get } from 'node:http';
import { pipeline } from 'node:stream/promises';

const [url, out] = process.argv.slice(2);
if (!url || !out) {
  process.stderr.write('usage: http-get.js URL OUT\n');
  process.exit(2);
}
get(url, (res) => {
  if (res.statusCode !== 200) {
    process.stderr.write(`HTTP ${res.statusCode}\n`);
    process.exit(1);
  }
  pipeline(res, createWriteStream(out)).then(
    () => process.exit(0),
    (error: Error) => {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    },
  );
}).on('error', (error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
