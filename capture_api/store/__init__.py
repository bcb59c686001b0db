"""Persistence: the capture records and the outbox live in one SQL database."""
