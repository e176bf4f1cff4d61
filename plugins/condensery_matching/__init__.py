"""Pixel synthesis and the matching objectives (distribution, gradient, trajectory, ...)."""
