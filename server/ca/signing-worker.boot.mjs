// Entry of a signing thread (signing-pool.ts): registers tsx, so that the thread runs the TypeScript
// sources as the main thread does, then loads the worker itself.
import { register } from 'tsx/esm/api';

register();
await import('./signing-worker.ts');
