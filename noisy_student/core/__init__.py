"""Configuration: frozen dataclasses, recipe defaults, dataset descriptions, errors.

The bottom layer of `noisy_student`: imports nothing from the other
subpackages, so every layer above can read it.
"""
