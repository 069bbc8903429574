"""What is built on a fit: held-out validation, the bootstrap, compute-optimal allocation,
design power."""
