"""Evaluation: curated sets (``sets``), ranking metrics (``metrics``), running a model version against the sets and
storing the results (``runner``), and the promotion gate built on them (``promotion``)."""
