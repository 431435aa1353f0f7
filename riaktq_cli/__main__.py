"""Lets `python -m riaktq_cli` behave exactly like the `riaktq` script."""

from riaktq_cli.cli.fast_open import main

if __name__ == "__main__":
    main()
