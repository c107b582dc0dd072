from plextuner.cli import run

if __name__ == "__main__":  # not when a multiprocessing child imports it as its main
    run()
