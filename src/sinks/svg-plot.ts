/**
 * A small dependency-free SVG line plot for the HTML report: linear or log axes, "nice" ticks,
 * several series with a legend, and labelled point markers (e.g. best / final epoch).
 */
export interface PlotSeries {
  readonly name: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
  readonly color?: string;
  readonly dash?: boolean;
}

export interface PlotMarker {
  readonly x: number;
  readonly y: number;
  readonly label: string;
  readonly color?: string;
}

export interface LinePlotOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly PlotSeries[];
  readonly markers?: readonly PlotMarker[];
  readonly width?: number;
  readonly height?: number;
  readonly logX?: boolean;
  readonly logY?: boolean;
  /** Class on the <svg> element (the report's tests look for 'plot'). */
  readonly id?: string;
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Round numbers 1, 2, 5 × 10^k covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

function fmt(x: number): string {
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e4 || a < 1e-3) return x.toExponential(0);
  return String(Number(x.toPrecision(3)));
}

export function linePlot(o: LinePlotOptions): string {
  // the legend sits right of the plot area, so it never hides a curve
  const legendWidth = o.series.length > 0 ? Math.min(260, 40 + 6 * Math.max(...o.series.map((s) => s.name.length))) : 0;
  const W = (o.width ?? 560) + legendWidth;
  const H = Math.max(o.height ?? 320, 40 + 13 * o.series.length);
  const m = { l: 64, r: 16 + legendWidth, t: 28, b: 44 };
  const tx = (v: number) => (o.logX ? Math.log10(v) : v);
  const ty = (v: number) => (o.logY ? Math.log10(v) : v);
  const ok = (x: number, y: number) => Number.isFinite(tx(x)) && Number.isFinite(ty(y));
  const pts = o.series.flatMap((s) => s.points.filter(([x, y]) => ok(x, y)));
  const body: string[] = [];
  body.push(`<text x="${(W - legendWidth) / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`);
  if (pts.length === 0) {
    body.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="12" fill="#888">no data</text>`);
    return wrap(o, W, H, body);
  }
  let [x0, x1] = [Math.min(...pts.map((p) => tx(p[0]))), Math.max(...pts.map((p) => tx(p[0])))];
  let [y0, y1] = [Math.min(...pts.map((p) => ty(p[1]))), Math.max(...pts.map((p) => ty(p[1])))];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - (Math.abs(y0) || 1) * 0.1, y1 + (Math.abs(y1) || 1) * 0.1];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const px = (v: number) => m.l + ((tx(v) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (v: number) => H - m.b - ((ty(v) - y0) / (y1 - y0)) * (H - m.t - m.b);
  // axes and ticks (log axes tick at integer powers of ten)
  const xt = o.logX ? niceTicks(Math.ceil(x0), Math.floor(x1), Math.max(1, Math.floor(x1) - Math.ceil(x0))).map((e) => 10 ** e) : niceTicks(x0, x1, 6);
  const yt = o.logY ? niceTicks(Math.ceil(y0), Math.floor(y1), Math.max(1, Math.floor(y1) - Math.ceil(y0))).map((e) => 10 ** e) : niceTicks(y0, y1, 5);
  body.push(`<g class="axes" stroke="#444" fill="none"><path d="M${m.l},${m.t}V${H - m.b}H${W - m.r}"/></g>`);
  for (const t of xt) {
    const x = px(t).toFixed(1);
    body.push(`<line x1="${x}" y1="${H - m.b}" x2="${x}" y2="${H - m.b + 4}" stroke="#444"/><text x="${x}" y="${H - m.b + 16}" text-anchor="middle" font-size="10">${fmt(t)}</text>`);
  }
  for (const t of yt) {
    const y = py(t).toFixed(1);
    body.push(`<line x1="${m.l}" y1="${y}" x2="${W - m.r}" y2="${y}" stroke="#eee"/><text x="${m.l - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="10">${fmt(t)}</text>`);
  }
  body.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 8}" text-anchor="middle" font-size="11">${escapeXml(o.xLabel)}</text>`);
  body.push(`<text transform="translate(14,${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle" font-size="11">${escapeXml(o.yLabel)}</text>`);
  // series
  o.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const p = s.points.filter(([x, y]) => ok(x, y)).map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`);
    if (p.length === 0) return;
    body.push(
      `<polyline class="series" data-name="${escapeXml(s.name)}" points="${p.join(' ')}" fill="none" stroke="${color}" stroke-width="1.6"${s.dash ? ' stroke-dasharray="5,3"' : ''}/>`,
    );
    if (p.length === 1) body.push(`<circle cx="${p[0].split(',')[0]}" cy="${p[0].split(',')[1]}" r="2.5" fill="${color}"/>`);
  });
  for (const mk of o.markers ?? []) {
    if (!ok(mk.x, mk.y)) continue;
    const x = px(mk.x).toFixed(1);
    const y = py(mk.y).toFixed(1);
    body.push(
      `<g class="marker"><circle cx="${x}" cy="${y}" r="4.5" fill="none" stroke="${mk.color ?? '#000'}" stroke-width="1.5"/><text x="${x}" y="${Number(y) - 8}" text-anchor="middle" font-size="10">${escapeXml(mk.label)}</text></g>`,
    );
  }
  // legend
  o.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const y = m.t + 6 + i * 13;
    const x = W - legendWidth + 8;
    body.push(
      `<g class="legend"><line x1="${x}" y1="${y}" x2="${x + 18}" y2="${y}" stroke="${color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5,3"' : ''}/><text x="${x + 22}" y="${y}" dominant-baseline="middle" font-size="10">${escapeXml(s.name)}</text></g>`,
    );
  });
  return wrap(o, W, H, body);
}

function wrap(o: LinePlotOptions, W: number, H: number, body: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" class="plot"${o.id ? ` id="${escapeXml(o.id)}"` : ''} width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" role="img" aria-label="${escapeXml(o.title)}">${body.join('')}</svg>`;
}
