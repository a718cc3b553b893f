"""Evaluation: curated sets (``sets``), ranking metrics (``metrics``), running model versions against the sets
(``runner``), the resources they use (``resources``), storing and reading results (``results``) and comparing and
presenting them (``report``). The promotion gate that decides on these results is in ``photoscout.rollout``."""
