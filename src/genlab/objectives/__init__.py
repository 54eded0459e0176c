"""Training objectives: GAN losses and penalties, the VAE ELBO, autoregressive NLL."""
