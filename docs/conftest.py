"""Keep pytest's doctest collection away from the Sphinx configuration module."""

collect_ignore = ["conf.py"]
