"""Lets `python -m riaktq_cli` behave exactly like the `riaktq` script."""

from riaktq_cli.entry import main

if __name__ == "__main__":
    main()
