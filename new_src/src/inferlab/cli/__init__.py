"""The `inferlab` command line: thin Typer commands. Nothing here imports torch at module level."""
