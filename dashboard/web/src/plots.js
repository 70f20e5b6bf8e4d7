// uPlot charts in a panel: their width follows the panel's, and they go with the view.

// The width a chart takes in `holder`: the holder's, at least 300 px.
export function chartWidth(holder) {
  return Math.max(holder.clientWidth, 300);
}

// Resizes `plots` (uPlot instances) to their holders' widths whenever `box` resizes. Returns the view
// object the page keeps: {destroy()} disconnects and destroys them.
export function resizingView(box, plots, height) {
  const observer = new ResizeObserver(() => {
    for (const u of plots) {
      const width = chartWidth(u.root.parentElement);
      if (width !== u.width) u.setSize({ width, height });
    }
  });
  observer.observe(box);
  return {
    destroy() {
      observer.disconnect();
      plots.forEach((u) => u.destroy());
    },
  };
}
