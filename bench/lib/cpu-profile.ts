/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and sums time per function: self time (samples in
 * the function itself) and total time (samples with the function anywhere on the stack, each sample
 * counted once per function). Used by `npm run bench -- --profile` to point at bottlenecks.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { ROOT } from './util.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FunctionTime {
  name: string;
  selfMs: number;
  totalMs: number;
  selfShare: number;
  totalShare: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  functions: FunctionTime[];
  /** Self time by source file (or "(node internals)", "(native)", "(gc)", "(idle)"). */
  files: { file: string; selfMs: number; share: number }[];
}

function label(frame: ProfileNode['callFrame']): string {
  const url = frame.url.startsWith('file://') ? relative(ROOT, new URL(frame.url).pathname) : frame.url;
  const where = url ? `${url}:${frame.lineNumber + 1}` : '';
  return `${frame.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
}

function fileOf(frame: ProfileNode['callFrame']): string {
  if (!frame.url) return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  if (frame.url.startsWith('node:')) return '(node internals)';
  if (!frame.url.startsWith('file://')) return frame.url;
  const path = relative(ROOT, new URL(frame.url).pathname);
  const nm = path.match(/^node_modules\/((?:@[^/]+\/)?[^/]+)/);
  return nm ? `node_modules/${nm[1]}` : path;
}

export function summariseProfile(file: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const files = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    const node = byId.get(profile.samples[i]);
    if (!node) continue;
    totalUs += dt;
    if (node.callFrame.functionName === '(idle)') {
      idleUs += dt;
      continue;
    }
    const own = label(node.callFrame);
    self.set(own, (self.get(own) ?? 0) + dt);
    const f = fileOf(node.callFrame);
    files.set(f, (files.get(f) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const l = label(byId.get(id)!.callFrame);
      if (seen.has(l)) continue;
      seen.add(l);
      total.set(l, (total.get(l) ?? 0) + dt);
    }
  }
  const busyUs = totalUs - idleUs || 1;
  const functions = [...total.entries()].map(([name, t]) => ({
    name,
    selfMs: (self.get(name) ?? 0) / 1000,
    totalMs: t / 1000,
    selfShare: (self.get(name) ?? 0) / busyUs,
    totalShare: t / busyUs,
  }));
  return {
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    functions,
    files: [...files.entries()].map(([file, us]) => ({ file, selfMs: us / 1000, share: us / busyUs })).sort((a, b) => b.selfMs - a.selfMs),
  };
}

/** A plain-text report: busy/idle time, the top files and functions by self time, the top by total time. */
export function formatProfile(summary: ProfileSummary, top = 20): string {
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)} %`;
  const lines = [`profile: ${summary.totalMs.toFixed(0)} ms sampled, ${summary.idleMs.toFixed(0)} ms idle`, '', 'self time by file:'];
  for (const f of summary.files.slice(0, 12)) lines.push(`  ${pct(f.share)}  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.file}`);
  lines.push('', 'self time by function:');
  for (const f of [...summary.functions].sort((a, b) => b.selfMs - a.selfMs).slice(0, top)) {
    lines.push(`  ${pct(f.selfShare)}  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}`);
  }
  lines.push('', 'total (inclusive) time, project functions:');
  const project = summary.functions.filter((f) => /(^| )(pki|server)\//.test(f.name)).sort((a, b) => b.totalMs - a.totalMs);
  for (const f of project.slice(0, top)) lines.push(`  ${pct(f.totalShare)}  ${f.totalMs.toFixed(0).padStart(7)} ms  ${f.name}`);
  return lines.join('\n');
}
