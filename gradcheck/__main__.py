"""``python -m gradcheck`` is the ``gradcheck`` command."""

from gradcheck.cli import main

if __name__ == "__main__":  # guarded: worker processes may import this module
    raise SystemExit(main())
