"""Surfaces from implicit functions: coarse-to-fine grid evaluation and mesh extraction."""
