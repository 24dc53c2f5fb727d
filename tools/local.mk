# tools/ — fanout-cli and the benchmark.
