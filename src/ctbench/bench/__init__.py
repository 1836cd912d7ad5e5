"""Speed benchmarks: ``make bench`` (:mod:`ctbench.bench.speed`) and ``make reproduce-table-1``
(:mod:`ctbench.bench.complexity`); ``python -m ctbench.bench --help``."""
