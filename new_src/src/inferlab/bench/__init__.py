"""Checking and timing kernels: environment fingerprint, correctness sweeps, (later) timing."""
