"""Optimisation loops: per-scene fits (a model's parameters fitted to one scene's observations)
and what they share with the dataset trainer (progress reporting, clean stops, optimisers)."""
