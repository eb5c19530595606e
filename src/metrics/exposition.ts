/** The Prometheus text exposition format (version 0.0.4) of a list of metric families. */
import { Labels, MetricFamily } from './model';

export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A label value as the format wants it: backslash, double quote and line feed escaped. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and line feed only. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function number(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels);
  if (extra) pairs.push(extra);
  if (pairs.length === 0) return '';
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

export function renderExposition(families: MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    const name = f.kind === 'counter' ? `${f.name}_total` : f.name;
    out.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.kind}`);
    if (f.kind === 'histogram') {
      for (const s of f.series) {
        let cumulative = 0;
        s.bounds.forEach((b, i) => {
          cumulative += s.counts[i];
          out.push(`${name}_bucket${labelText(s.labels, ['le', number(b)])} ${cumulative}`);
        });
        out.push(`${name}_bucket${labelText(s.labels, ['le', '+Inf'])} ${s.count}`);
        out.push(`${name}_sum${labelText(s.labels)} ${number(s.sum)}`, `${name}_count${labelText(s.labels)} ${s.count}`);
      }
    } else {
      for (const s of f.series) out.push(`${name}${labelText(s.labels)} ${number(s.value)}`);
    }
  }
  return out.join('\n') + '\n';
}
