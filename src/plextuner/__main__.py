from plextuner.cli import main

raise SystemExit(main())
