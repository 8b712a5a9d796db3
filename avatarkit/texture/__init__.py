"""Textures in UV space: unwrapping views onto a mesh's UV layout, atlases, mirror completion."""
