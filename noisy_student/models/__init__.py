"""Models in every format: building, checkpoints, loading, classifiers, export."""
