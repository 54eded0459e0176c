"""genlab: a Lightning + Hydra laboratory for generative image models."""

__version__ = "0.1.0"
