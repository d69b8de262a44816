"""CLI: python -m gid_engine.train (or torchrun ... -m gid_engine.train); the trainer is gid_engine.training.train."""
import sys

from .training.train import main

if __name__ == "__main__":
    sys.exit(main())
