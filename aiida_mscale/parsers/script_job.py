"""What the parsers of the script CalcJobs have in common."""


def script_error(retrieved, stderr_name: str) -> str:
    """The script's own error message from its stderr: the last ``ERROR`` line, else the last line ('' if none)."""
    if stderr_name not in retrieved.base.repository.list_object_names():
        return ''
    lines = [line for line in retrieved.base.repository.get_object_content(stderr_name).splitlines() if line.strip()]
    return next((line for line in reversed(lines) if line.startswith('ERROR')), lines[-1] if lines else '')
