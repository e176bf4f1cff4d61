"""Diversity-driven directed weight adjustment (DWA) on the SRe2L squeeze/recover/relabel pipeline."""
