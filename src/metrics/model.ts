/**
 * Metrics as nettrace keeps them, independent of how they leave: the Prometheus
 * exposition (exposition.ts) and OTLP (otlp.ts) both render this model.
 */

export type Labels = Record<string, string>;

export interface NumberSeries {
  labels: Labels;
  value: number;
}

export interface HistogramSeries {
  labels: Labels;
  /** Upper bounds of the buckets, ascending; a last bucket to +Inf is implied. */
  bounds: number[];
  /** Observations per bucket (not cumulative), bounds.length + 1 of them. */
  counts: number[];
  sum: number;
  count: number;
}

interface FamilyBase {
  /** Base name: Prometheus adds `_total` to counters; OTLP uses it as is. */
  name: string;
  help: string;
  /** UCUM unit for OTLP (`s`, `By`, `{connection}`). */
  unit: string;
}

export type MetricFamily =
  | (FamilyBase & { kind: 'counter' | 'gauge'; series: NumberSeries[] })
  | (FamilyBase & { kind: 'histogram'; series: HistogramSeries[] });

/**
 * Anything that contributes metric families: the socket collector (TCP, UDP
 * and steering locality, socket-metrics.ts), the tracer's own stats, the
 * process's own use, and the OTLP sink's count of what it could not send.
 */
export interface MetricSource {
  families(): MetricFamily[];
}

/** A monotonic counter keyed by its label values, in the order of `labelNames`. */
export class CounterVec {
  private readonly values = new Map<string, { labels: string[]; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly unit: string,
    readonly labelNames: string[],
  ) {}

  inc(labels: string[], by = 1): void {
    const key = labels.join('\0');
    const v = this.values.get(key);
    if (v) v.value += by;
    else this.values.set(key, { labels, value: by });
  }

  /** Removes every series whose label `labelName` is `value` (its place in a LabelBudget was given up). */
  drop(labelName: string, value: string): void {
    const i = this.labelNames.indexOf(labelName);
    if (i < 0) return;
    for (const [key, v] of this.values) if (v.labels[i] === value) this.values.delete(key);
  }

  family(): MetricFamily {
    const series = [...this.values.values()].map((v) => ({ labels: labelsOf(this.labelNames, v.labels), value: v.value }));
    return { name: this.name, help: this.help, unit: this.unit, kind: 'counter', series };
  }
}

/** A histogram without labels, with fixed bucket bounds. */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly unit: string,
    readonly bounds: number[],
  ) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }

  family(): MetricFamily {
    const series = [{ labels: {}, bounds: this.bounds, counts: [...this.counts], sum: this.sum, count: this.count }];
    return { name: this.name, help: this.help, unit: this.unit, kind: 'histogram', series };
  }
}

function labelsOf(names: string[], values: string[]): Labels {
  const out: Labels = {};
  names.forEach((n, i) => (out[n] = values[i]));
  return out;
}
