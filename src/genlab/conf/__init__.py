"""genlab's Hydra config tree (root config: ``train.yaml``), shipped inside the package so that
an installed genlab finds it (``genlab.config.CONFIG_DIR``, or ``pkg://genlab.conf``)."""
