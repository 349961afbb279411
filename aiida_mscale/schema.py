"""The one schema layer between a user's parameters and any input file the suite writes.

Every parameter dictionary that reaches a LAMMPS script, a pw.x/ld1.x input, a motep/solver JSON file or a
CalcJob is validated by a pydantic model derived from :class:`ParameterModel`: unknown keys are refused,
types are strict (a string is not a number, a bool is not an integer), numbers are finite, and ranges are
checked by the fields. :func:`validate_parameters` turns pydantic's error list into one message naming each
offending key, e.g. ``parameters.gcmc.mu: Input should be a valid number (got '1.0\\nshell touch x')``.

Writers never interpolate a user value as it was given: numbers go through :func:`format_float` /
:func:`format_int` (which refuse anything that is not a finite number), and the few strings that reach an
input file (element symbols, file names) through :func:`check_token`, a whitelist of patterns. A value with
a newline, a quote or a LAMMPS variable reference can therefore never reach a script.

Pure Python (pydantic, numpy): no AiiDA import, so the pure modules (``lammps/``, ``mtp/``) use it too.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Annotated, Any, TypeVar

from ase.data import chemical_symbols
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

__all__ = [
    'ELEMENTS',
    'ElementSymbol',
    'FileName',
    'NonNegativeFloat',
    'NonNegativeInt',
    'ParameterModel',
    'PositiveFloat',
    'PositiveInt',
    'Probability',
    'Seed',
    'check_token',
    'format_float',
    'format_int',
    'validate_parameters',
]

#: The chemical elements (H .. Og) by symbol; ASE's list without its placeholder ``X``.
ELEMENTS = frozenset(chemical_symbols[1:])

#: Whitelist patterns of the strings that may reach an input file.
TOKEN_PATTERNS = {
    'element': re.compile(r'[A-Z][a-z]?'),
    'filename': re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}'),
    'path': re.compile(r'/?([A-Za-z0-9_.+-]+/)*[A-Za-z0-9_.+-]+'),
    'identifier': re.compile(r'[A-Za-z_][A-Za-z0-9_]{0,63}'),
}


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + '...'


def check_token(value: Any, kind: str) -> str:
    """``value`` if it is a string matching the whitelist pattern ``kind`` of :data:`TOKEN_PATTERNS`.

    ``element`` additionally requires a real element symbol; ``path`` refuses ``..`` components.

    :raises ValueError: naming the value and what was expected.
    """
    pattern = TOKEN_PATTERNS[kind]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f'{_shown(value)} is not a valid {kind} (allowed: {pattern.pattern})')
    if kind == 'element' and value not in ELEMENTS:
        raise ValueError(f'{_shown(value)} is not a chemical element symbol')
    if kind == 'path' and '..' in value.split('/'):
        raise ValueError(f'{_shown(value)}: `..` is not allowed in a path')
    return value


def _as_real(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f'{what} must be a number, not {_shown(value)}')
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f'{what} must be finite, not {_shown(value)}')
    return result


def format_float(value: Any, what: str = 'a value') -> str:
    """A finite real number as LAMMPS/Fortran/JSON read it: ``'%.12g'`` of ``float(value)``.

    :raises ValueError: for anything that is not a finite real number (strings, bools, None, NaN, inf).
    """
    return f'{_as_real(value, what):.12g}'


def format_fortran_float(value: Any, what: str = 'a value') -> str:
    """A finite real number in Fortran namelist form, e.g. ``1.5d0``, ``-2.0000000000000001d-03``."""
    mantissa, _, exponent = f'{_as_real(value, what):.16e}'.partition('e')
    return f'{mantissa}d{int(exponent)}'


def format_int(value: Any, what: str = 'a value') -> str:
    """An integer (``int``/numpy integer, or a float with an integral value), written in decimal.

    :raises ValueError: for bools, non-integral numbers and anything that is not a number.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f'{what} must be an integer, not {_shown(value)}')
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if math.isfinite(float(value)) and float(value) == int(value):
        return str(int(value))
    raise ValueError(f'{what} must be an integer, not {_shown(value)}')


# ------------------------------------------------------------------------------------------ field types
def _numpy_scalar_to_python(value: Any) -> Any:
    """numpy scalars (``np.float64``, ``np.int64``) as Python numbers; everything else unchanged."""
    if hasattr(value, 'dtype') and getattr(value, 'shape', None) == () and hasattr(value, 'item'):
        return value.item()
    return value


def _element(value: str) -> str:
    return check_token(value, 'element')


def _filename(value: str) -> str:
    return check_token(value, 'filename')


_Number = BeforeValidator(_numpy_scalar_to_python)
PositiveFloat = Annotated[float, _Number, Field(gt=0)]
NonNegativeFloat = Annotated[float, _Number, Field(ge=0)]
Probability = Annotated[float, _Number, Field(ge=0, le=1)]
PositiveInt = Annotated[int, _Number, Field(ge=1)]
NonNegativeInt = Annotated[int, _Number, Field(ge=0)]
#: A random seed LAMMPS, numpy and motep all accept: 1 <= seed < 2**31.
Seed = Annotated[int, _Number, Field(ge=1, le=2**31 - 1)]
Real = Annotated[float, _Number]
ElementSymbol = Annotated[str, AfterValidator(_element)]
FileName = Annotated[str, AfterValidator(_filename)]


class ParameterModel(BaseModel):
    """Base of every parameter schema: no unknown keys, strict types, finite numbers."""

    model_config = ConfigDict(extra='forbid', strict=True, allow_inf_nan=False, validate_default=True)

    def dump(self) -> dict:
        """The validated parameters as a plain, JSON-serialisable dict (defaults filled in)."""
        return self.model_dump(mode='json')


Model = TypeVar('Model', bound=ParameterModel)


def _location(where: str, loc: tuple) -> str:
    parts = [where] if where else []
    for item in loc:
        if isinstance(item, str) and ('[' in item or '(' in item):
            continue  # pydantic's name of a union member or validator, not a key
        parts.append(f'[{item}]' if isinstance(item, int) else str(item))
    return '.'.join(parts).replace('.[', '[')


def describe_errors(exception: ValidationError, where: str = '') -> str:
    """One line per error of ``exception``: ``where.key: message (got value)``."""
    lines, seen = [], set()
    for error in exception.errors(include_url=False):
        message = error['msg'].removeprefix('Value error, ')
        location = _location(where, error['loc'])
        if error['type'] == 'extra_forbidden':
            message = 'unknown parameter (not allowed here)'
        elif error['type'] == 'missing':
            message = 'required parameter is missing'
        quiet = error['type'] in ('missing', 'extra_forbidden') or not error['loc']  # a model-level check says it
        shown = '' if quiet else f' (got {_shown(error.get("input"))})'
        if location not in seen:  # a union reports once per member: the first says enough
            seen.add(location)
            lines.append(f'{location}: {message}{shown}')
    return '; '.join(lines)


def validate_parameters(model: type[Model], data: Any, where: str = 'parameters') -> Model:
    """``data`` validated by ``model`` (defaults filled in).

    :param where: the name of the input, used as the prefix of every key in the message.
    :raises ValueError: one message naming every offending key, its problem and the value given.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f'{where} must be a dictionary, not {_shown(data)}')
    try:
        return model.model_validate(data)
    except ValidationError as exception:
        raise ValueError(describe_errors(exception, where)) from None


#: Strings a Fortran namelist or solver option may hold: words, numbers, dots, dashes (no quotes, newlines,
#: slashes, spaces or shell/LAMMPS/Fortran syntax).
SAFE_WORD = re.compile(r'[A-Za-z0-9_.+-]{1,64}')


def unsafe_strings(value: Any, where: str = 'parameters', pattern: re.Pattern = SAFE_WORD) -> list[str]:
    """Where in a nested dict/list ``value`` a string (key or value) does not match ``pattern``: ``['a.b: 'x\\ny'']``.

    Used on free-form dictionaries that a third-party writer turns into an input file (pw.x namelists through
    aiida-quantumespresso, the continuum solver's JSON), where the schema of every key is not ours.
    """
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not pattern.fullmatch(key):
                found.append(f'{where}: key {_shown(key)}')
            found += unsafe_strings(item, f'{where}.{key}', pattern)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found += unsafe_strings(item, f'{where}[{index}]', pattern)
    elif isinstance(value, str) and not pattern.fullmatch(value):
        found.append(f'{where}: {_shown(value)}')
    return found
