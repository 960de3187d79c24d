"""The conductor benchmark (issue 5): ``python -m bench.run --help``."""
