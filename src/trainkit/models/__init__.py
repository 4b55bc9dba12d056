"""LightningModules (training logic) with their nn.Module networks, one file per model."""
