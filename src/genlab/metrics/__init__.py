"""Sample-quality evaluation: feature extractors, cached reference statistics, FID / IS / KID
(torchmetrics), precision / recall, density / coverage and the memorization check."""
