"""The report side of a run: the hub (parts, merge, results.json), its rendering
(summary.md, index.html, plots) and `parity diff` between two hubs."""
