"""Online anomaly detection on closed-window series (one detector contract, several models)."""
