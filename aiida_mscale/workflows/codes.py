"""The codes a work chain's builder takes by role (``{'pw': ..., 'lammps': ...}``), loaded and checked once."""

from __future__ import annotations

from aiida import orm


def load_role_codes(codes: dict | None, plugins: dict[str, str], needed=None) -> dict:
    """``codes`` (codes or labels by role) loaded, with every ``needed`` role present and of its plugin.

    :param plugins: role -> the CalcJob entry point its code must run.
    :param needed: the roles that must be given (default: every role of ``plugins``).
    :raises ValueError: naming a missing role or a code of the wrong plugin.
    """
    codes = {role: orm.load_code(c) if isinstance(c, str) else c for role, c in (codes or {}).items()}
    for role in sorted(plugins if needed is None else needed):
        plugin = plugins[role]
        if role not in codes:
            raise ValueError(f'`codes` has no `{role}` code (a `{plugin}` code)')
        if codes[role].default_calc_job_plugin != plugin:
            raise ValueError(
                f'the `{role}` code `{codes[role].full_label}` is for plugin '
                f'`{codes[role].default_calc_job_plugin}`, not `{plugin}`'
            )
    return codes


def wrong_plugin(code, plugin: str, needs: str) -> str | None:
    """A validator's message when ``code`` (if given) is not of ``plugin``, else None.

    :param needs: what the input is for, e.g. ``'labelling needs a `quantumespresso.pw` code (pw.x)'``.
    """
    if code is None or code.default_calc_job_plugin == plugin:
        return None
    return f'code `{code.full_label}` is for plugin `{code.default_calc_job_plugin}`, but {needs}.'
