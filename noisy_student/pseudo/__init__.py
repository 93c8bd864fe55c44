"""Pseudo-labels: teacher prediction on unlabeled shards, selection and balancing, filter files."""
