// Copies the web console's static files (HTML, CSS) next to its compiled modules in dist/web.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const from = 'src/web';
const to = 'dist/web';
mkdirSync(to, { recursive: true });
const files = readdirSync(from).filter((name) => /\.(html|css|svg)$/.test(name));
for (const name of files) copyFileSync(join(from, name), join(to, name));
console.log(`build-web: ${files.length} static files -> ${to}`);
