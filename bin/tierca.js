#!/usr/bin/env node
// The `tierca` command. tsx is registered first so that the TypeScript sources run as they are,
// with no build step; the CLI is imported after it (a static import would be hoisted above it).
import { register } from 'tsx/esm/api';

register();
// `tierca cert list | head -3`: a reader that stops early is not an error of the CLI.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}
const { run } = await import('../cli/main.ts');
const code = await run(process.argv.slice(2));
// process.exit() does not wait for output still queued on a pipe (asynchronous on some platforms):
// flush both streams first.
await Promise.all([process.stdout, process.stderr].map((stream) => new Promise((resolve) => stream.write('', resolve))));
process.exit(code);
