"""capture: point-of-care clinical photo capture into DICOM archives.

The data path, top to bottom: ``context`` (who and where) -> ``capture`` (what the
clinician took) -> ``encode`` (DICOM VL Photographic Image) -> ``deliver`` -> ``notify``.
"""

__version__ = "0.1.0"
