"""The cross-encoder: its model, checkpoints in lightning-ir's layout, pair
tokenisation, backbones, the lean inference encoder and precision."""
