"""What runs on a GPU machine's worker: the runner (runner.py) and its parts."""
