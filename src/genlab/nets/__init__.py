"""Plain nn.Modules. Networks know nothing of configs, losses or Lightning."""
