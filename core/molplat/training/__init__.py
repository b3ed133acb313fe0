"""Training: the Lightning task shared by every backend, and the CPU backend."""
