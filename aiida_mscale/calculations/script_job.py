"""What the CalcJobs that run a script of this package (``mscale-mtp-*``, ``solver.py``) have in common."""

from __future__ import annotations

from aiida.common import CalcInfo, CodeInfo


def write_text(folder, text: str, filename: str) -> None:
    """Write ``text`` to ``filename`` in the CalcJob's sandbox ``folder``."""
    with folder.open(filename, 'w', encoding='utf8') as handle:
        handle.write(text)


def script_calcinfo(calcjob, cmdline: list[str], stdout: str, stderr: str, retrieve: list[str]) -> CalcInfo:
    """A CalcInfo running the job's code once with ``cmdline``, under MPI if the options ask for it."""
    codeinfo = CodeInfo()
    codeinfo.code_uuid = calcjob.inputs.code.uuid
    codeinfo.cmdline_params = cmdline
    codeinfo.stdout_name = stdout
    codeinfo.stderr_name = stderr
    codeinfo.withmpi = calcjob.inputs.metadata.options.withmpi
    calcinfo = CalcInfo()
    calcinfo.codes_info = [codeinfo]
    calcinfo.retrieve_list = list(retrieve) + [stdout, stderr]
    return calcinfo


def merged_parameters(inputs, defaults: dict | None = None) -> dict:
    """The optional ``parameters`` Dict input over ``defaults`` (works on validator inputs and ``self.inputs``)."""
    given = inputs['parameters'].get_dict() if 'parameters' in inputs else {}
    return {**(defaults or {}), **given}
