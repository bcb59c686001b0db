"""The audit trail: who did what to which patient's data, and whether it was allowed."""
