"""Flag definitions and the entry-point helper shared by the binaries."""
