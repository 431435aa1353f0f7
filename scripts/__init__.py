"""Project scripts (benchmarks, demo); a package so `python -m scripts.bench` works."""
