"""Evaluation: surface metrics between meshes, named protocols, alignment."""
