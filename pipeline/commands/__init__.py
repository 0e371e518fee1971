"""One module per ``edgewatch`` subcommand.

Each module defines ``add_parser(subparsers)`` which registers its parser and sets
``func=run`` on it, where ``run(args) -> int`` is the exit status. The CLI discovers them, so a
new command is a new file here and nothing else.
"""
