"""Reads /metrics from standard input with Prometheus's own OpenMetrics parser
(prometheus-client) and prints its samples as JSON: [{"name", "labels", "value"}].
A text the parser refuses makes this exit non-zero with the parser's message."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        samples.append({"name": sample.name, "labels": sample.labels, "value": sample.value})
print(json.dumps(samples))
