"""What the encoder reads a photo from: ``bytes``, or a spooled file mapped into memory.

The service maps the spooled photo (``capture_api.store.spool.mapped``) instead of reading it:
no copy in the heap, where glibc kept a freed 4 MB buffer per malloc arena (issue 13). A
read-only ``mmap`` slices to ``bytes``, is searched by ``re`` and viewed by ``memoryview``
and ``numpy`` like ``bytes`` is, which is all the encoder does with its input.
"""

from __future__ import annotations

import mmap
from typing import TypeAlias

PhotoData: TypeAlias = bytes | mmap.mmap
