"""One module per ``chatlab`` subcommand: ``HELP``, ``add_arguments(parser)``, ``main(args)``."""
