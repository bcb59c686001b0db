"""A development EHR: FHIR R4 server, SMART authorization server and UPS-RS worklist.

Used by the tests and by ``make run`` when no real EHR is configured. It is NOT part of the
product: ``capture_api`` never imports it, and the wheel does not ship it. It follows the
published specifications (FHIR R4, SMART App Launch 2.2, DICOM PS3.18 chapter 11) closely
enough that the product cannot tell it from a small real EHR, and it holds only synthetic data.
"""
