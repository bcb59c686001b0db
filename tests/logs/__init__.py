"""The service logging: PHI filter, safe tracebacks and the access log."""
