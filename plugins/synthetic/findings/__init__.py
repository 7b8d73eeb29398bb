"""The phantom's findings, one module each; every module declares ``FINDING``, a
:class:`~medvlp_bench_plugins.synthetic.finding_spec.FindingSpec`. :mod:`..registry` collects them."""
