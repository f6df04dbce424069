"""Where the ``ticklane`` subcommands live.

Each module named here defines ``add_parser(subparsers)`` which adds its subcommand and sets
``func``. Keeping the list here lets each feature keep its command beside its code.
"""

COMMAND_MODULES = (
    "host.decode",      # ticklane decode
    "host.report",      # ticklane report
    "host.daemon",      # ticklane run / recover
)
