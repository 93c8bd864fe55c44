"""Drivers: what each `main --mode` does, and the iterative teacher -> student rounds."""
