"""``python -m hotmesh``: the same as the ``hotmesh`` command."""

from hotmesh.cli import main

raise SystemExit(main())
