"""Built-in downstream protocols registered as plugins (entry-point group ``medvlp_bench``)."""
