"""What operators watch: Prometheus metrics and dependency readiness (/metrics, /readyz)."""
