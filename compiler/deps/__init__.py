"""Stages deps + merge: every source of dependencies parsed into one shared type, then merged."""
