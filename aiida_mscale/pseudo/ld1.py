"""ld1.x generation parameters (as data), the ld1.x input writer and the reader of ld1.x output.

Pure Python, no AiiDA. The parameters per element live in ``ld1_parameters.yaml`` next to this module
(pslibrary's published generation parameters, A. Dal Corso, Comput. Mater. Sci. 95, 337 (2014); the file
cites its source per entry). :func:`generation_parameters` merges a user's overrides into them and
validates the result with :class:`GenerationParameters` (pydantic, strict, unknown keys refused).

:func:`write_input` writes one ld1.x input (``&input``, ``&inputp``, the pseudization cards, ``&test``):
every number goes through :func:`~aiida_mscale.schema.format_float` / ``format_int``, and every string is
matched against a whitelist (element symbol, functional table, configuration regex, wavefunction label,
file name). ld1.x generates the dataset with ``iswitch=3`` and tests it on exactly one configuration in
the same run (more are refused: "too many test configurations"); a separate test run (``iswitch=2``)
would have to read the UPF file, which ld1.x 6.7 cannot (see :mod:`aiida_mscale.pseudo.upf`). So the
transferability test is one generation run per test configuration: the generation is deterministic,
the dataset is the same in every run (only the written atomic wavefunctions and ``total_psenergy`` depend
on the test configuration), and the dataset kept is the one of the first run, whose test configuration is
the reference configuration.

:func:`parse_output` reads one run: all-electron and pseudo total energies, the AE vs PS eigenvalues of the
test configuration, ld1.x's cutoff estimates, the spherical-Bessel-basis test (eigenvalues vs cutoff), and
ld1.x's error messages. :func:`transferability` combines the runs into the test result: for each test
configuration the excitation energy E(config) - E(reference) all-electron and with the dataset, and their
difference, the transferability error (Ry).
"""

from __future__ import annotations

import copy
import functools
import math
import pathlib
import re
from typing import Literal

import yaml
from pydantic import Field, field_validator, model_validator

from aiida_mscale.schema import (
    ParameterModel,
    PositiveFloat,
    check_token,
    format_float,
    format_int,
    validate_parameters,
)

PARAMETERS_FILE = pathlib.Path(__file__).with_name('ld1_parameters.yaml')

#: The functionals the datasets can be generated for: our name -> ld1.x's ``dft`` and the file-name tag.
FUNCTIONALS = {'PBE': ('PBE', 'pbe'), 'PBEsol': ('PBESOL', 'pbesol')}

#: An electronic configuration as ld1.x reads it: an optional noble-gas core, then ``nl<occupation>`` items
#: (negative occupations mark unbound channels used only for the pseudization, as ld1.x documents).
CONFIGURATION = re.compile(r'(\[(He|Ne|Ar|Kr|Xe|Rn)\] )?\d[spdf]-?\d+(\.\d*)?( \d[spdf]-?\d+(\.\d*)?)*')
#: A test configuration: valence states only, non-negative occupations.
TEST_CONFIGURATION = re.compile(r'\d[spdf]\d+(\.\d*)?( \d[spdf]\d+(\.\d*)?)*')
WAVEFUNCTION_LABEL = re.compile(r'\d[SPDF]')
DATASET_NAME = re.compile(r'[A-Z][a-z]?\.\{functional\}-[a-z]*-kjpaw_psl\.\d+\.\d+(\.\d+)?')

#: ld1.x test runs: at most this many test configurations (one generation run each).
MAX_TEST_CONFIGURATIONS = 8

#: Bessel-basis test of the reference run: cutoffs (Ry) from, to and step.
BESSEL_CUTOFFS = (20.0, 120.0, 10.0)


def _normalised(text: str) -> str:
    """Runs of blanks collapsed to one; any other whitespace (newline, tab) is kept, so the patterns refuse it."""
    return re.sub(' +', ' ', text.strip(' ')) if isinstance(text, str) else text


def _check_config(value: str) -> str:
    value = _normalised(value)
    if not CONFIGURATION.fullmatch(value):
        raise ValueError(f'{value!r} is not a configuration like `[He] 2s1 2p0`')
    return value


def _check_tests(value: list[str]) -> list[str]:
    value = [_normalised(item) for item in value]
    for item in value:
        if not TEST_CONFIGURATION.fullmatch(item):
            raise ValueError(f'{item!r} is not a test configuration like `2s2 2p3`')
    return value


class Wavefunction(ParameterModel):
    """One pseudized channel of the generation cards (radii in bohr, energies in Ry)."""

    label: str
    n: int = Field(ge=1, le=7)
    l: int = Field(ge=0, le=3)  # noqa: E741  (ld1.x's name)
    occupation: float = Field(ge=-2.0, le=14.0)
    energy: float = Field(ge=-50.0, le=50.0)
    rcut: PositiveFloat = Field(le=5.0)
    rcutus: PositiveFloat = Field(le=5.0)

    @field_validator('label')
    @classmethod
    def _label(cls, value: str) -> str:
        if not WAVEFUNCTION_LABEL.fullmatch(value):
            raise ValueError(f'{value!r} is not a wavefunction label like `2S` or `3D`')
        return value


class GenerationParameters(ParameterModel):
    """Everything ld1.x needs to generate one PAW dataset (besides element and functional)."""

    dataset: str
    source: str = Field(min_length=1)
    zed: PositiveFloat = Field(le=118)
    config: str
    lloc: int = Field(ge=-2, le=3)
    rcloc: PositiveFloat | None = Field(default=None, le=5.0)
    which_augfun: Literal['PSQ', 'BESSEL', 'GAUSS', 'AE']
    rmatch_augfun: PositiveFloat | None = Field(default=None, le=5.0)
    rmatch_augfun_nc: bool = False
    nlcc: bool = False
    new_core_ps: bool = False
    rcore: PositiveFloat | None = Field(default=None, le=5.0)
    tm: bool = True
    wavefunctions: list[Wavefunction] = Field(min_length=1, max_length=12)
    test_configurations: list[str] = Field(min_length=1, max_length=MAX_TEST_CONFIGURATIONS)

    @field_validator('dataset')
    @classmethod
    def _dataset(cls, value: str) -> str:
        if not DATASET_NAME.fullmatch(value):
            raise ValueError(f'{value!r} is not a dataset name like `Li.{{functional}}-sl-kjpaw_psl.1.0.0`')
        return value

    _config = field_validator('config')(_check_config)
    _tests = field_validator('test_configurations')(_check_tests)

    @model_validator(mode='after')
    def _consistent(self):
        if self.lloc == -1 and self.rcloc is None:
            raise ValueError('lloc = -1 (pseudized all-electron potential) needs rcloc')
        if self.nlcc and self.rcore is None and self.new_core_ps:
            raise ValueError('new_core_ps needs rcore')
        for wavefunction in self.wavefunctions:
            if wavefunction.rcutus < wavefunction.rcut:
                raise ValueError(f'{wavefunction.label}: rcutus ({wavefunction.rcutus}) < rcut ({wavefunction.rcut})')
        return self


class GenerationOverrides(ParameterModel):
    """What a user may change in the published parameters (every key optional; the rest is kept)."""

    config: str | None = None
    lloc: int | None = Field(default=None, ge=-2, le=3)
    rcloc: PositiveFloat | None = Field(default=None, le=5.0)
    which_augfun: Literal['PSQ', 'BESSEL', 'GAUSS', 'AE'] | None = None
    rmatch_augfun: PositiveFloat | None = Field(default=None, le=5.0)
    rmatch_augfun_nc: bool | None = None
    nlcc: bool | None = None
    new_core_ps: bool | None = None
    rcore: PositiveFloat | None = Field(default=None, le=5.0)
    tm: bool | None = None
    wavefunctions: list[Wavefunction] | None = Field(default=None, min_length=1, max_length=12)
    test_configurations: list[str] | None = Field(default=None, min_length=1, max_length=MAX_TEST_CONFIGURATIONS)

    @field_validator('config')
    @classmethod
    def _config(cls, value: str | None) -> str | None:
        return None if value is None else _check_config(value)

    @field_validator('test_configurations')
    @classmethod
    def _tests(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_tests(value)


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    return yaml.safe_load(PARAMETERS_FILE.read_text())['elements']


def available_elements() -> list[str]:
    """The elements with generation parameters, in the order of the data file."""
    return list(_table())


def check_functional(functional: str) -> str:
    """``functional`` if supported (``PBE``, ``PBEsol``). :raises ValueError: naming it and the supported ones."""
    if functional not in FUNCTIONALS:
        raise ValueError(f'functional {functional!r} is not supported; supported: {sorted(FUNCTIONALS)}')
    return functional


def check_element(element: str) -> str:
    """``element`` if it has generation parameters. :raises ValueError: naming it and the available ones."""
    check_token(element, 'element')
    if element not in _table():
        raise ValueError(
            f'no ld1.x generation parameters for element {element!r}; available: {", ".join(available_elements())}'
        )
    return element


def generation_parameters(element: str, functional: str, overrides: dict | None = None) -> GenerationParameters:
    """The validated generation parameters of ``element`` for ``functional``, with ``overrides`` merged in.

    :raises ValueError: for an element without parameters, an unsupported functional or bad overrides
        (each named).
    """
    check_element(element)
    check_functional(functional)
    entry = copy.deepcopy(_table()[element])
    entry = entry.pop('functionals', {}).get(functional, entry)
    entry.pop('functionals', None)
    if overrides:
        given = validate_parameters(GenerationOverrides, overrides, 'parameters').model_dump(exclude_none=True)
        entry.update(given)
    parameters = validate_parameters(GenerationParameters, entry, f'generation parameters of {element}')
    if not parameters.dataset.startswith(f'{element}.'):
        raise ValueError(f'generation parameters of {element} name the dataset {parameters.dataset!r}')
    return parameters


def dataset_filename(element: str, functional: str, parameters: GenerationParameters) -> str:
    """The UPF file name, pslibrary's convention: ``Li.pbesol-sl-kjpaw_psl.1.0.0.UPF``."""
    name = parameters.dataset.format(functional=FUNCTIONALS[check_functional(functional)][1]) + '.UPF'
    return check_token(name, 'filename')


def valence_charge(configuration: str) -> float:
    """The number of electrons of a (test) configuration like ``'3s2 3p6 3d5 4s1.5'``.

    Written as ``zval``: with ``iswitch=3`` ld1.x requires the valence charge to equal that of the run's test
    configuration, and cannot guess it for a fractional one. The dataset kept is that of the reference
    (neutral) configuration, so its ``z_valence`` is the neutral atom's.
    """
    return sum(float(item[2:]) for item in configuration.split())


def _logical(value: bool) -> str:
    return '.true.' if value else '.false.'


def write_input(
    element: str,
    functional: str,
    parameters: GenerationParameters,
    test_configuration: str,
    file_pseudopw: str,
    bessel_test: bool = False,
) -> str:
    """One ld1.x input: generate the PAW dataset of ``element`` and test it on ``test_configuration``.

    :param bessel_test: also run ld1.x's spherical-Bessel-basis test (eigenvalues vs plane-wave cutoff
        :data:`BESSEL_CUTOFFS`), which shows the cutoff convergence of the atom and ghost states.
    """
    check_element(element)
    dft = FUNCTIONALS[check_functional(functional)][0]
    parameters = GenerationParameters.model_validate(parameters.model_dump())  # re-check everything
    configuration = _normalised(test_configuration)
    if not TEST_CONFIGURATION.fullmatch(configuration):
        raise ValueError(f'{test_configuration!r} is not a test configuration like `2s2 2p3`')
    check_token(file_pseudopw, 'filename')

    lines = [
        ' &input',
        f"   title='{element}',",
        f'   zed={format_float(parameters.zed, "zed")},',
        '   rel=1,',
        f"   config='{parameters.config}',",
        '   iswitch=3,',
        f"   dft='{dft}'",
        ' /',
        ' &inputp',
        '   lpaw=.true.,',
        '   pseudotype=3,',
        f"   file_pseudopw='{file_pseudopw}',",
        "   author='aiida-mscale (pslibrary parameters)',",
        f'   lloc={format_int(parameters.lloc, "lloc")},',
        f'   zval={format_float(valence_charge(configuration), "zval")},',
    ]
    for key in ('rcloc', 'rmatch_augfun', 'rcore'):
        value = getattr(parameters, key)
        if value is not None:
            lines.append(f'   {key}={format_float(value, key)},')
    lines.append(f"   which_augfun='{parameters.which_augfun}',")
    for key in ('rmatch_augfun_nc', 'nlcc', 'new_core_ps', 'tm'):
        lines.append(f'   {key}={_logical(getattr(parameters, key))},')
    lines[-1] = lines[-1].rstrip(',')
    lines += [' /', format_int(len(parameters.wavefunctions))]
    for wf in parameters.wavefunctions:
        numbers = [format_int(wf.n), format_int(wf.l)] + [
            format_float(getattr(wf, key), key) for key in ('occupation', 'energy', 'rcut', 'rcutus')
        ]
        lines.append(f'{wf.label} ' + ' '.join(numbers) + ' 0.0')
    lines += [' &test', '   nconf=1,', f"   configts(1)='{configuration}'"]
    if bessel_test:
        low, high, step = BESSEL_CUTOFFS
        lines[-1] += ','
        lines.append(f'   ecutmin={format_float(low)}, ecutmax={format_float(high)}, decut={format_float(step)}')
    lines += [' /', '']
    return '\n'.join(lines)


# ------------------------------------------------------------------------------------------------- output
_NUMBER = r'[-+]?\d+\.\d*(?:[EeDd][-+]?\d+)?'
_EIGENVALUE = re.compile(
    rf'^\s*(\d)\s+(\d)\s+(\d[SPDF])\s+\d\(\s*({_NUMBER})\)\s+({_NUMBER})\s+({_NUMBER})\s+({_NUMBER})\s*$', re.M
)


def _float(text: str) -> float:
    return float(text.replace('D', 'E').replace('d', 'e'))


def parse_output(text: str) -> dict:
    """What one ld1.x generation-and-test run reports.

    :returns: ``{'errors': [...], 'warnings': [...], 'etot_ae': Ry, 'etot_ps': Ry, 'eigenvalues': [...],
        'wfc_cutoff_estimates': [Ry, ...], 'rho_cutoff_estimate': Ry, 'bessel': {cutoff: {l: [Ry, ...]}},
        'completed': bool}``; a missing quantity is ``None`` (or empty).
    """
    errors = [
        f'{routine}: {" ".join(message.split())}'
        for routine, message in re.findall(
            r'Error in routine\s+(\S+)\s*\(\s*-?\d+\s*\):\s*\n(.*?)\n\s*%{10,}', text, re.S
        )
    ]
    warnings = sorted({' '.join(line.split()) for line in re.findall(r'^.*(?:[Ww]arning|WARNING).*$', text, re.M)})

    result = {
        'errors': errors,
        'warnings': warnings,
        'etot_ae': None,
        'etot_ps': None,
        'eigenvalues': [],
        'wfc_cutoff_estimates': [_float(v) for v in re.findall(rf'Estimated cut-off energy=\s*({_NUMBER})', text)],
        'rho_cutoff_estimate': None,
        'bessel': {},
        'completed': 'End of pseudopotential test' in text,
    }
    rho = re.findall(rf'Expected ecutrho=\s*({_NUMBER})', text)
    if rho:
        result['rho_cutoff_estimate'] = _float(rho[-1])

    test = text.partition('Testing the pseudopotential')[2]
    if test:
        test = test.partition('End of pseudopotential test')[0]
        for n, l, label, occupation, e_ae, e_ps, _ in _EIGENVALUE.findall(test):  # noqa: E741
            result['eigenvalues'].append(
                {
                    'label': label,
                    'n': int(n),
                    'l': int(l),
                    'occupation': _float(occupation),
                    'ae': _float(e_ae),
                    'ps': _float(e_ps),
                }
            )
        etot = re.search(rf'^\s*Etot\s*=\s*({_NUMBER})\s*Ry', test, re.M)
        etotps = re.search(rf'^\s*Etotps\s*=\s*({_NUMBER})\s*Ry', test, re.M)
        result['etot_ae'] = _float(etot.group(1)) if etot else None
        result['etot_ps'] = _float(etotps.group(1)) if etotps else None

    bessel = text.partition('basis set of Bessel functions')[2]
    for block in re.split(r'Cutoff \(Ry\) :', bessel)[1:]:
        cutoff, _, body = block.partition('\n')
        levels = {}
        for l_value, values in re.findall(r'E\(L=(\d)\)\s*=(.*)', body):
            levels[int(l_value)] = [_float(v) for v in re.findall(_NUMBER, values)]
        result['bessel'][_float(cutoff.strip())] = levels
    for value in [result['etot_ae'], result['etot_ps']] + [e['ps'] for e in result['eigenvalues']]:
        if value is not None and not math.isfinite(value):
            result['errors'].append('non-finite energy in the test')
            break
    return result


#: Default tolerances of the ld1.x checks (Ry).
TOLERANCES = {
    # |(E_ps(config) - E_ps(ref)) - (E_ae(config) - E_ae(ref))|, the transferability error, per configuration
    'transferability': 5.0e-3,
    # |e_ae - e_ps| of an occupied or reference state in any test configuration
    'eigenvalue': 5.0e-3,
    # a Bessel-basis eigenvalue this far below the lowest pseudo state of its channel is a ghost
    'ghost': 0.05,
}


def ghost_states(reference: dict, tolerance: float = TOLERANCES['ghost']) -> list[str]:
    """Channels whose Bessel-basis spectrum (at the highest cutoff) has a level below the lowest pseudo state.

    A PAW/ultrasoft dataset with a ghost has a bound state of the pseudo-Hamiltonian that the all-electron
    atom lacks; in ld1.x's spherical-Bessel test it shows as an eigenvalue below the lowest physical level
    of that angular momentum.
    """
    if not reference['bessel'] or not reference['eigenvalues']:
        return []
    highest = reference['bessel'][max(reference['bessel'])]
    found = []
    for l_value, levels in highest.items():
        physical = [e['ps'] for e in reference['eigenvalues'] if e['l'] == l_value]
        if not physical or not levels:
            continue
        if min(levels) < min(physical) - tolerance:
            found.append(f'l={l_value}: Bessel-basis level {min(levels):.4f} Ry below {min(physical):.4f} Ry')
    return found


def bessel_cutoff(reference: dict, tolerance: float = 1.0e-3) -> float | None:
    """The lowest Bessel-test cutoff (Ry) from which every occupied level is within ``tolerance`` Ry of its value
    at the highest cutoff; ``None`` without a Bessel test."""
    bessel = reference['bessel']
    if not bessel:
        return None
    cutoffs = sorted(bessel)
    occupied = {(e['l'], k) for e in reference['eigenvalues'] if e['occupation'] > 0 for k in [0]}
    final = bessel[cutoffs[-1]]

    def converged(cutoff):
        levels = bessel[cutoff]
        for l_value, _ in occupied:
            if l_value in final and l_value in levels:
                count = min(len(final[l_value]), len(levels[l_value]))
                for index in range(count):
                    if final[l_value][index] < 0 and abs(levels[l_value][index] - final[l_value][index]) > tolerance:
                        return False
        return True

    result = cutoffs[-1]
    for cutoff in reversed(cutoffs):
        if not converged(cutoff):
            break
        result = cutoff
    return result


def transferability(runs: list[dict], configurations: list[str], tolerances: dict | None = None) -> dict:
    """The transferability test of one dataset from its ld1.x runs (one per test configuration, reference first).

    :returns: a JSON-serialisable dict: per configuration the all-electron and pseudo excitation energies
        relative to the reference configuration and their difference (Ry), the largest |AE - PS| eigenvalue
        error, the ghost check, ld1.x's cutoff estimates, the Bessel-test cutoff, and ``failures`` (why the
        dataset fails the tolerances; empty if it passes).
    """
    tolerances = {**TOLERANCES, **(tolerances or {})}
    reference = runs[0]
    failures = []
    for index, run in enumerate(runs):
        for message in run['errors']:
            failures.append(f'ld1.x error in test configuration {index + 1} ({configurations[index]!r}): {message}')
        if not run['errors'] and (run['etot_ae'] is None or run['etot_ps'] is None):
            failures.append(f'no test energies for configuration {index + 1} ({configurations[index]!r})')
    tests = []
    max_eigenvalue_error = 0.0
    for configuration, run in zip(configurations, runs):
        entry = {'configuration': configuration}
        if None not in (run['etot_ae'], run['etot_ps'], reference['etot_ae'], reference['etot_ps']):
            entry['de_ae'] = run['etot_ae'] - reference['etot_ae']
            entry['de_ps'] = run['etot_ps'] - reference['etot_ps']
            entry['error'] = entry['de_ps'] - entry['de_ae']
        errors = [abs(e['ae'] - e['ps']) for e in run['eigenvalues'] if e['occupation'] > 0]
        entry['max_eigenvalue_error'] = max(errors, default=0.0)
        max_eigenvalue_error = max(max_eigenvalue_error, entry['max_eigenvalue_error'])
        tests.append(entry)
    max_error = max((abs(t['error']) for t in tests if 'error' in t), default=None)
    if max_error is not None and max_error > tolerances['transferability']:
        failures.append(f'transferability error {max_error * 1e3:.2f} mRy > {tolerances["transferability"] * 1e3} mRy')
    if max_eigenvalue_error > tolerances['eigenvalue']:
        failures.append(
            f'AE-PS eigenvalue error {max_eigenvalue_error * 1e3:.2f} mRy > {tolerances["eigenvalue"] * 1e3} mRy'
        )
    ghosts = ghost_states(reference, tolerances['ghost'])
    failures += [f'ghost state: {g}' for g in ghosts]
    return {
        'units': 'Ry',
        'tests': tests,
        'max_transferability_error': max_error,
        'max_eigenvalue_error': max_eigenvalue_error,
        'ghosts': ghosts,
        'wfc_cutoff_estimate': max(reference['wfc_cutoff_estimates'], default=None),
        'rho_cutoff_estimate': reference['rho_cutoff_estimate'],
        'bessel_cutoff': bessel_cutoff(reference),
        'warnings': sorted({w for run in runs for w in run['warnings']}),
        'tolerances': tolerances,
        'failures': failures,
        'passed': not failures,
    }
