/** Shared look of the charts: system fonts only (the HTML is self-contained), fixed sizes. */
export const CHART_WIDTH = 640
export const CHART_HEIGHT = 260

export const BASE_CONFIG = {
  font: 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
  background: 'white',
  view: {stroke: '#ddd'},
  axis: {labelFontSize: 11, titleFontSize: 12, gridColor: '#eee'},
  legend: {labelFontSize: 11, titleFontSize: 12, orient: 'bottom' as const, labelLimit: 400},
  title: {fontSize: 14},
}

/** Colours with a fixed meaning across charts. */
export const COLORS = {
  dirty: '#d62728',
  sent: '#1f77b4',
  threshold: '#2ca02c',
  live: '#dbe9f6',
  stopCopy: '#f8d0d0',
  setup: '#eeeeee',
  ram: '#1f77b4',
  deviceState: '#ff7f0e',
  vfioState: '#9467bd',
  postcopy: '#fde8c8',
  limit: '#d62728',
}

/** Colours of send causes (in registration order), wrapping if more are registered. */
export const CAUSE_PALETTE = ['#7f7f7f', '#1f77b4', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#2ca02c', '#d62728']
