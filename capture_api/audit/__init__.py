"""The audit trail: who did what to which patient's data, and whether it was allowed.

``trail`` (append rows, domain events), ``middleware`` (every PHI request), ``events`` (the
vocabulary: BALP and DICOM codes), ``fhir_audit`` (FHIR R4 AuditEvent, IHE BALP),
``dicom_audit`` (DICOM audit message, PS3.15 A.5), ``syslog`` and ``forwarding`` (IHE ATNA),
``export`` (CSV and Bundle pages). docs/audit.md describes the whole.
"""
