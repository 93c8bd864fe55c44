"""Supervised and Noisy Student training: input pipeline, losses, schedule, EMA, loop."""
