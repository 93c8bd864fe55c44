"""Image preprocessing and RandAugment: pure, graph-safe TF functions (the data noise)."""
