from plextuner.cli import run

run()
