"""medvlp-bench: a benchmark harness for medical vision-language pretraining on chest X-rays."""

__version__ = "0.1.0"
