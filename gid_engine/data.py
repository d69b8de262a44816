"""CLI: python -m gid_engine.data VIDEOS_DIR OUT_DIR; the dataset builder is gid_engine.training.data."""
import sys

from .training.data import main

if __name__ == "__main__":
    sys.exit(main())
