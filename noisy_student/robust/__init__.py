"""Robustness evaluation: ImageNet-A/-C/-P metrics, readers, benchmarks, reports, FGSM."""
