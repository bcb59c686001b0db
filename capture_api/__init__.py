"""capture: point-of-care clinical photo capture into DICOM archives.

The data path, top to bottom: ``context`` (who and where) -> ``capture`` (what the
clinician took) -> ``encode`` (DICOM VL Photographic Image) -> ``deliver`` -> ``notify``.
Each package's ``__init__`` names in ``__all__`` what other packages may use;
docs/architecture.md draws the layers and the rule that keeps them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
