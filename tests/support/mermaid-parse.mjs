// Parses a Mermaid diagram read from stdin with Mermaid's own parser (npm's `mermaid`, in a DOM
// that `jsdom` provides), for tests/toolbox.rs. Usage: node mermaid-parse.mjs DIR < diagram,
// where DIR holds node_modules/mermaid and node_modules/jsdom (tests/engine.sh installs them).
// Prints the diagram type and exits 0, or prints the parser's error and exits 1.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.argv[2];
const require = createRequire(join(dir, 'package.json'));
const { JSDOM } = require('jsdom');
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const entry = join(dir, 'node_modules/mermaid/dist/mermaid.core.mjs');
const { default: mermaid } = await import(pathToFileURL(entry).href);
try {
  const result = await mermaid.parse(readFileSync(0, 'utf8'));
  console.log(result.diagramType);
} catch (error) {
  console.error(error.message ?? String(error));
  process.exit(1);
}
