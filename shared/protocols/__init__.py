"""Wire protocols other than our own JSON API, as pure codecs (no I/O, no runtime)."""
