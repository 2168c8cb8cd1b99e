"""The documentation site's generated reference pages, made from the live objects (so they cannot drift):
the CLI (Typer), the settings (pydantic-settings), the HTTP API (OpenAPI), the metrics, SLOs and alerts
(the SLO spec), and the dead-letter reasons and statuses (the enums). ``docsgen.build`` is the
``mkdocs-gen-files`` script; ``docsgen.shell_blocks`` reads the shell blocks the docs ask CI to run."""
