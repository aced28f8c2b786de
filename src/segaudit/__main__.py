"""``python -m segaudit``: the same as the ``segaudit`` command."""

from segaudit.cli import main

if __name__ == "__main__":
    main()
