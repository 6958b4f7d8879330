"""Backends read the deploy IR and produce something runnable or writable; they never read each other."""
