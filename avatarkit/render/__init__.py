"""Rendering: camera rigs, ray-cast G-buffers, shading (the core of ``avatarkit render``)."""
