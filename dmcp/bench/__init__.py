"""DMCP's speed benchmarks (`python bench/bench_<name>.py [--quick]`; `make bench` runs them)."""
