"""What a running worker needs beyond the pipeline and its agents: the worker itself, Kafka
clients built from the deployment's settings, Prometheus exposition and the HTTP endpoint."""
