"""``python -m capture_api`` is the ``capture-api`` command."""

from capture_api.cli import main

raise SystemExit(main())
