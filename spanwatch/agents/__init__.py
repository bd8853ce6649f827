"""faust agents: thin shells that move Kafka messages through the pure functions of ``pipeline``."""
