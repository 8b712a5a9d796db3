"""Geometry helpers shared by the verbs (UV rasterisation, rotations, ...)."""
