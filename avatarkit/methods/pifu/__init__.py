"""PIFu (Saito et al. 2019): pixel-aligned implicit functions for clothed humans."""
