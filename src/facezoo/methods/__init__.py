"""Face-synthesis methods of the zoo, one sub-package each.

Each ``facezoo.methods.<name>`` holds ``networks.py`` (plain ``nn.Module`` s), ``module.py`` (the
LightningModule and its GAN step) and ``official.py`` (loading the official released checkpoints).
"""
