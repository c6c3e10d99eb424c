"""`python -m authserver`: the same as `authctl serve`."""

from cli.main import main

main(["serve"])
