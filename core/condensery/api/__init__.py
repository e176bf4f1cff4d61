"""The contract between condensery and its plugins (filled in by the next commits)."""
