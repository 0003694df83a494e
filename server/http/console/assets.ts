/**
 * The console's static files (assets/): a style sheet and one small script, read once at start and
 * served from /console/assets/ — nothing from outside (the intranet is air-gapped: no CDN, no web
 * font), no inline script or style (the CSP forbids both).
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { Router } from 'express';

const FILES: Record<string, string> = { 'console.css': 'text/css; charset=utf-8', 'console.js': 'text/javascript; charset=utf-8' };

export function assetRoutes(): Router {
  const r = Router();
  const loaded = new Map<string, { body: Buffer; type: string; etag: string }>();
  for (const [name, type] of Object.entries(FILES)) {
    const body = readFileSync(new URL(`./assets/${name}`, import.meta.url));
    loaded.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"` });
  }
  r.get('/assets/:file', (req, res, next) => {
    const file = loaded.get(req.params.file);
    if (!file) return next();
    res.set({ 'content-type': file.type, 'cache-control': 'public, max-age=3600', etag: file.etag });
    if (req.headers['if-none-match'] === file.etag) return void res.status(304).end();
    res.send(file.body);
  });
  return r;
}
