"""Geo-PIFu (He et al. 2020): PIFu's pixel-aligned features beside latent 3D features of a
coarse occupancy volume predicted from the same image."""
