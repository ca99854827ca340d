"""One module per ``chatlab`` subcommand (``add_arguments(parser)``, ``main(args)``); the pieces they
share are in ``common.py``.  The one-line help of each is in ``chatlab.cli.COMMANDS``."""
