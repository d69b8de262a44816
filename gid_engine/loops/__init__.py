"""Loops and files: seamless looping of frame sequences, reading pictures and writing animations."""
