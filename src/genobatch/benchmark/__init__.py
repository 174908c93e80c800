"""The benchmark harness: which hardware is the best buy for a workload, and are results identical on it.

* ``plan`` - the YAML benchmark plan, validated.
* ``parsers`` - metrics from tools' end-of-run lines (dorado, guppy, a user regex).
* ``sharding`` - a data set split into shards balanced by size.
* ``runner`` - submits one array job per tool x configuration x target x repeat through the API.
* ``aggregate`` - instance run time (longest shard), throughput, cost, repeats, recommendation.
* ``equivalence`` - normalised output digests compared across targets.
* ``report`` - xlsx per pricing region, PNG charts and an HTML page.
"""
