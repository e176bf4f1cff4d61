"""Coreset baselines: class-balanced selections of real images (random, herding, k-center, k-means)."""
