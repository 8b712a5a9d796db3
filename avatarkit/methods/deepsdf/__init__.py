"""DeepSDF (Park et al. 2019): an auto-decoder of signed distance functions, one latent code per shape."""
