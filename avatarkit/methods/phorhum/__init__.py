"""Phorhum (Alldieck et al. 2022) as OSA re-implemented it: an SDF with albedo and a shading network from one photo."""
