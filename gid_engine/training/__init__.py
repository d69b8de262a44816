"""Training the learned model: datasets built from videos, and the trainer (CLIs: gid_engine.data, gid_engine.train)."""
