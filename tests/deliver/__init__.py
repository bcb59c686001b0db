"""Tests of delivery to archives (DICOMweb against a real Orthanc)."""
