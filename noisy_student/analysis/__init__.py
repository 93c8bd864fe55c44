"""What the measurements say: statistics for results tables (docs/results.md)."""
