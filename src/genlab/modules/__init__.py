"""LightningModules: one training algorithm each."""
