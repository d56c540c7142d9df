"""The one exception type for mistakes a user can fix: the CLI prints its message, no traceback."""


class InferlabError(Exception):
    """A clear, one-sentence problem with the user's input or lab (bad path, unknown lesson...)."""
