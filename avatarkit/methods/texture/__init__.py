"""``train texture``: Sample&Refine's SamplerNet and RefinerNet (Cha et al., Eurographics 2023)."""
