"""The engine that runs recipes: private modules, no public names."""
