"""Example third-party plugin package for medvlp-bench."""
