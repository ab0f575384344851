"""`lander flash pico` (being written: registers nothing yet)."""


def add_parser(subparsers) -> None:
    """Nothing yet."""
