"""Stage lock: the chosen environment pinned with hashes, stored in conda-lock's file format."""
