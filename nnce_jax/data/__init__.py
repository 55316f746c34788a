"""Data sources: synthetic samplers (``toy2d``); TFDS pipelines arrive with real data."""
