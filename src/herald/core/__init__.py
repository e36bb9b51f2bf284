"""Pure domain: no I/O, no framework, no SQL."""
