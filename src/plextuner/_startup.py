"""What the `plextuner` command settles before anything imports pydantic.

pydantic looks for plugins when its first model is built: it reads the entry points of every
installed distribution (importlib.metadata), 20-30 ms of every start (`import plextuner.cli`,
alternating runs: median 319 -> 294 ms on a slow stretch). plextuner uses no pydantic plugin;
an operator who sets PYDANTIC_DISABLE_PLUGINS keeps their own value.
"""

import os

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
