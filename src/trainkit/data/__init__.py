"""LightningDataModules, one file per family of data: images, tabular, text."""
