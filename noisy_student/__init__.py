"""Noisy Student Training in TensorFlow 2 / Keras 3."""
