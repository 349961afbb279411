"""Calculation functions of the active-learning loop: initial configurations, mu grid, candidates, curves.

Each result of :class:`~aiida_mscale.workflows.active_learning.ActiveLearningWorkChain` that is not made by a
CalcJob is made here, so it stays in the provenance graph.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_mscale.data.mtp_potential import MtpPotentialData
from aiida_mscale.data.training_set import TrainingSetData


def guest_indices(structure: orm.StructureData, guest: str) -> list[int]:
    """Indices of the sites of element ``guest``."""
    return [k for k, site in enumerate(structure.sites) if structure.get_kind(site.kind_name).symbol == guest]


@calcfunction
def generate_initial_configurations(
    structure: orm.StructureData, guest: orm.Str, parameters: orm.Dict
) -> dict[str, orm.StructureData]:
    """Strained and rattled copies of ``structure`` at several guest fractions, with seeded random orderings.

    ``parameters``: ``fractions`` (list of guest-site occupancies x in [0, 1]), ``per_fraction`` (configurations
    per fraction), ``strain`` (maximum relative strain of each cell vector, uniform in [-strain, +strain]),
    ``rattle`` (standard deviation of the Gaussian displacement of every atom [Angstrom]), ``seed``.
    For a fraction x, round(x N) of the N guest sites of ``structure`` stay occupied (at least one atom is kept
    in the cell), chosen at random.
    """
    p = parameters.get_dict()
    rng = np.random.default_rng(int(p['seed']))
    atoms = structure.get_ase()
    guests = guest_indices(structure, guest.value)
    results = {}
    count = 0
    for fraction in p['fractions']:
        keep = int(round(float(fraction) * len(guests)))
        for _ in range(int(p['per_fraction'])):
            removed = rng.choice(guests, size=len(guests) - keep, replace=False) if keep < len(guests) else []
            configuration = atoms.copy()
            if len(removed) == len(configuration):
                continue
            del configuration[sorted(int(i) for i in removed)]
            strain = np.eye(3) + np.diag(rng.uniform(-p['strain'], p['strain'], size=3))
            configuration.set_cell(configuration.cell.array @ strain, scale_atoms=True)
            configuration.positions += rng.normal(0.0, p['rattle'], size=configuration.positions.shape)
            results[f'structure_{count:03d}'] = orm.StructureData(ase=configuration)
            count += 1
    return results


def reference_energy_fit(training_set: TrainingSetData) -> dict[str, float]:
    """Per-element reference energies e_s [eV]: least squares of E_k = sum_s N_{k,s} e_s over the labelled set.

    When the counts do not determine every e_s (e.g. one composition only), the minimum-norm solution is taken.
    """
    from ase.data import chemical_symbols

    numbers = training_set.get_array('atomic_numbers')
    offsets = training_set.get_offsets()
    energies = training_set.get_array('energies')
    elements = sorted(set(int(z) for z in numbers))
    counts = np.array(
        [[np.sum(numbers[offsets[k] : offsets[k + 1]] == z) for z in elements] for k in range(len(energies))],
        dtype=float,
    )
    # cut cells (local active learning) carry energy weight 0: a cluster's energy is no reference
    finite = np.isfinite(energies) & (training_set.get_array('energy_weights') > 0)
    if not finite.any():
        raise ValueError('the training set has no energy label')
    coefficients = np.linalg.lstsq(counts[finite], energies[finite], rcond=None)[0]
    return {chemical_symbols[z]: float(c) for z, c in zip(elements, coefficients)}


@calcfunction
def reference_energies(training_set: TrainingSetData) -> orm.Dict:
    """Per-element reference energies [eV] of a labelled set (:func:`reference_energy_fit`), e.g. ``{'Li': -196.2}``."""
    return orm.Dict(reference_energy_fit(training_set))


@calcfunction
def shift_species_energies(potential: MtpPotentialData, references: orm.Dict, sign: orm.Int) -> MtpPotentialData:
    """The potential with every species' constant site energy changed by ``sign`` x its reference energy [eV].

    An MTP's site energy is ``species_coeffs[type] + sum_alpha xi_alpha B_alpha`` (Shapeev 2016), so the result
    gives E' = E + sign sum_s N_s e_s: the same forces, stress and extrapolation grades (an active set depends on
    derivatives with respect to the coefficients, not on their values; it is kept). ``sign`` = +1 turns a fit to
    :func:`reference_training_set` energies into one of the total energies.
    """
    if sign.value not in (1, -1):
        raise ValueError(f'sign must be +1 or -1, not {sign.value}')
    return _shifted(potential, {s: -sign.value * float(e) for s, e in references.get_dict().items()})


@calcfunction
def reference_training_set(training_set: TrainingSetData, references: orm.Dict) -> TrainingSetData:
    """The set with energies E - sum_s N_s e_s [eV] (forces, stresses unchanged): energies of order 1 eV.

    An MTP fitted to these gives, with its species coefficients raised by e_s (:func:`shift_species_energies`
    with -e_s), exactly the potential fitted to the total energies; it is fitted to them because fix gcmc needs
    energies of order 1 eV (see :func:`gcmc_potential`).
    """
    from ase.data import chemical_symbols

    refs = references.get_dict()
    arrays = training_set.get_arrays()
    offsets = training_set.get_offsets()
    shifts = np.array(
        [
            sum(refs[chemical_symbols[int(z)]] for z in arrays['atomic_numbers'][offsets[k] : offsets[k + 1]])
            for k in range(len(offsets) - 1)
        ]
    )
    arrays['energies'] = arrays['energies'] - shifts
    return TrainingSetData.from_arrays(**arrays)


@calcfunction
def gcmc_potential(potential: MtpPotentialData, references: orm.Dict, guest: orm.Str) -> dict:
    """The potential fix gcmc needs, and the offset of the chemical potential [eV].

    fix gcmc "deletes" an atom by excluding it from the neighbour lists, so the energy after a trial deletion
    still holds the excluded atom's site energy with an empty neighbourhood, which for an MTP is its species
    coefficient c_guest (every basis function vanishes). And it evaluates exp(beta mu) and exp(-beta dU)
    separately, which underflow for DFT total energies (beta * 200 eV ~ 2300 at 1000 K). So the guest's species
    coefficient is set to zero and every host's lowered by its reference energy e_h: E'' = E - N_guest c_guest
    - sum_h N_h e_h, energies of order 1 eV, exact deletions. GCMC then takes mu'' = mu - c_guest.

    :return: ``potential`` (active set kept) and ``mu_offset`` (Float, c_guest [eV]).
    """
    from aiida_mscale.mtp.potential_file import parse_mtp

    mtp = parse_mtp(potential.get_text(), source=f'MtpPotentialData<{potential.pk}>')
    refs = references.get_dict()
    species = potential.species
    coefficients = np.asarray(mtp.species_coeffs, dtype=float)
    offset = float(coefficients[species.index(guest.value)])
    shifts = {s: (offset if s == guest.value else float(refs[s])) for s in species}
    shifted = _shifted(potential, shifts)
    return {'potential': shifted, 'mu_offset': orm.Float(offset)}


def _shifted(potential: MtpPotentialData, shifts: dict) -> MtpPotentialData:
    """``potential`` with ``species_coeffs[s] -= shifts[s]``; attributes and active set kept."""
    from aiida_mscale.mtp.potential_file import parse_mtp

    mtp = parse_mtp(potential.get_text(), source=f'MtpPotentialData<{potential.pk}>')
    missing = sorted(set(potential.species) - set(shifts))
    if missing:
        raise ValueError(f'no reference energy for species {missing}')
    mtp.species_coeffs = np.asarray(mtp.species_coeffs, dtype=float) - np.array(
        [shifts[s] for s in potential.species], dtype=float
    )
    shifted = MtpPotentialData(mtp.to_text(), species=potential.species)
    for key in ('training_set_size', 'errors', 'active_set_layout', 'active_set_size', 'active_set_training_set'):
        value = potential.base.attributes.get(key, None)
        if value is not None:
            shifted.base.attributes.set(key, value)
    shifted.base.attributes.set('energy_shifts', {s: float(shifts[s]) for s in potential.species})
    if potential.has_active_set:
        shifted.set_active_set(potential.get_active_set())
    return shifted


def guest_insertion_energy(training_set: TrainingSetData, guest: str) -> float:
    """Mean energy of a guest atom in the host [eV]: the slope mu_0 of E = mu_0 N_guest + sum_h e_h N_h.

    Least squares over the labelled configurations (N_h: the count of each host element); needs configurations
    at two or more guest counts.
    """
    from ase.data import atomic_numbers

    numbers = training_set.get_array('atomic_numbers')
    offsets = training_set.get_offsets()
    energies = training_set.get_array('energies')
    elements = sorted(set(int(z) for z in numbers))
    counts = np.array(
        [[np.sum(numbers[offsets[k] : offsets[k + 1]] == z) for z in elements] for k in range(len(energies))],
        dtype=float,
    )
    finite = np.isfinite(energies) & (training_set.get_array('energy_weights') > 0)  # cut cells excluded
    column = elements.index(atomic_numbers[guest])
    if len(set(counts[finite, column])) < 2:
        raise ValueError('the training set needs configurations at two or more guest counts to estimate mu_0')
    coefficients = np.linalg.lstsq(counts[finite], energies[finite], rcond=None)[0]
    return float(coefficients[column])


@calcfunction
def default_mu_grid(training_set: TrainingSetData, guest: orm.Str, offsets: orm.List) -> orm.List:
    """Guest chemical potentials [eV] for GCMC: mu_0 + each offset, mu_0 from :func:`guest_insertion_energy`.

    In a lattice gas the occupancy is x = 1 / (1 + exp(-(mu - mu_0) / kT)): offsets of a few tenths of an eV
    around mu_0 already take x from ~0 to ~1; interactions between guests (and the ideal-gas term
    kT ln(Lambda^3 / v) that ``fix gcmc`` adds, of order 0.1 eV) spread the range, so protocols use offsets
    of about +-1 eV.
    """
    mu_0 = guest_insertion_energy(training_set, guest.value)
    return orm.List([float(mu_0 + float(offset)) for offset in offsets.get_list()])


@calcfunction
def split_configurations(configurations: TrainingSetData) -> dict[str, orm.StructureData]:
    """One StructureData per configuration (``structure_000`` ...), periodic, elements as kinds."""
    return {f'structure_{k:03d}': orm.StructureData(ase=atoms) for k, atoms in enumerate(configurations.to_ase())}


def shortest_distances(configurations: TrainingSetData) -> np.ndarray:
    """(N,) the shortest interatomic distance [Angstrom] of each configuration (minimum image; inf for one atom)."""
    result = []
    for atoms in configurations.to_ase():
        if len(atoms) < 2:
            result.append(np.inf)
            continue
        distances = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
        result.append(float(np.min(distances + np.diag(np.full(len(atoms), np.inf)))))
    return np.array(result)


@calcfunction
def collect_candidates(min_distance: orm.Float | None = None, **configurations) -> TrainingSetData:
    """All extrapolative configurations of one sampling round, concatenated in link-label order (unlabelled).

    With ``min_distance`` [Angstrom], configurations with two atoms closer than that are left out: a potential far
    outside its domain can pull two atoms to a fraction of an Angstrom in one MD step (graded 10^7), and such a
    configuration is neither worth a DFT label nor accepted by DftLabelingWorkChain (overlapping atoms).
    """
    parts = [configurations[label].get_arrays() for label in sorted(configurations)]
    names = ('numbers_of_atoms', 'cells', 'pbc', 'positions', 'atomic_numbers')
    arrays = {name: np.concatenate([part[name] for part in parts]) for name in names}
    merged = TrainingSetData.from_arrays(**arrays)
    if min_distance is None:
        return merged
    keep = shortest_distances(merged) >= min_distance.value
    if not keep.any():
        raise ValueError(f'no configuration has all its atoms at least {min_distance.value} Angstrom apart')
    per_atom = np.repeat(keep, arrays['numbers_of_atoms'])
    return TrainingSetData.from_arrays(
        **{
            name: value[per_atom] if name in ('positions', 'atomic_numbers') else value[keep]
            for name, value in arrays.items()
        }
    )


@calcfunction
def build_learning_curve(summary: orm.Dict, **errors) -> orm.ArrayData:
    """The learning curve of an active-learning run.

    :param summary: ``{'iterations': [...], 'labels': [...], 'max_grades': [[per state point] per iteration],
        'state_points': [[mu, T], ...]}``; ``errors`` are the ``errors`` Dicts of the fits, labelled
        ``iteration_NNN``.
    :return: arrays ``iteration``, ``number_of_labels``, ``{train,validation}_rmse_{energy,forces,stress}``
        (meV/atom, meV/Angstrom, GPa; NaN where absent), ``max_grade`` (iterations x state points; NaN for a
        failed state point) and ``state_points`` (mu [eV], T [K]).
    """
    s = summary.get_dict()
    curve = orm.ArrayData()
    curve.set_array('iteration', np.array(s['iterations'], dtype=int))
    curve.set_array('number_of_labels', np.array(s['labels'], dtype=int))
    for part in ('training', 'validation'):
        for quantity, key in (('energy', 'energy_per_atom'), ('forces', 'forces'), ('stress', 'stress')):
            values = []
            for iteration in s['iterations']:
                table = errors.get(f'iteration_{iteration:03d}')
                value = None
                if table is not None:
                    value = table.get_dict().get(part, {}).get(key, {}).get('rmse')
                values.append(np.nan if value is None else float(value))
            name = 'train' if part == 'training' else 'validation'
            curve.set_array(f'{name}_rmse_{quantity}', np.array(values, dtype=float))
    grades = np.array(
        [[np.nan if g is None else float(g) for g in row] for row in s['max_grades']], dtype=float
    ).reshape(len(s['iterations']), len(s['state_points']))
    curve.set_array('max_grade', grades)
    curve.set_array('state_points', np.array(s['state_points'], dtype=float).reshape(-1, 2))
    return curve


@calcfunction
def build_coverage(summary: orm.Dict, **thermo) -> orm.ArrayData:
    """Guest fractions x visited by GCMC, per iteration and state point.

    :param summary: ``{'host_atoms': int, 'guest_sites': int, 'keys': {label: [iteration, mu, T]}}``; ``thermo``
        are the thermodynamic series of the MD runs (column ``atoms``) labelled as in ``keys``.
        x = (atoms - host atoms) / guest sites of the input structure.
    :return: arrays ``iteration``, ``mu`` [eV], ``temperature`` [K] (one row per run), ``x`` (runs x frames,
        NaN-padded), ``x_min``, ``x_max``, ``x_mean``.
    """
    s = summary.get_dict()
    labels = sorted(thermo)
    series = []
    for label in labels:
        atoms = thermo[label].get_array('atoms')
        series.append((np.asarray(atoms, dtype=float) - s['host_atoms']) / s['guest_sites'])
    width = max((len(x) for x in series), default=0)
    table = np.full((len(series), width), np.nan)
    for k, x in enumerate(series):
        table[k, : len(x)] = x
    coverage = orm.ArrayData()
    coverage.set_array('iteration', np.array([s['keys'][label][0] for label in labels], dtype=int))
    coverage.set_array('mu', np.array([s['keys'][label][1] for label in labels], dtype=float))
    coverage.set_array('temperature', np.array([s['keys'][label][2] for label in labels], dtype=float))
    coverage.set_array('x', table)
    coverage.set_array('x_min', np.array([np.min(x) for x in series], dtype=float))
    coverage.set_array('x_max', np.array([np.max(x) for x in series], dtype=float))
    coverage.set_array('x_mean', np.array([np.mean(x) for x in series], dtype=float))
    return coverage


@calcfunction
def record_loop_failures(failures: orm.Dict) -> orm.Dict:
    """The failed labels and state points of an active-learning run, as one output node.

    ``{'labels': {iteration_label: {structure_uuid, exit_status, reason, process_uuid}}, 'state_points':
    {iteration_key: {mu, temperature, exit_status, reason, process_uuid}}}``; the failed processes themselves
    are found by their UUIDs.
    """
    return orm.Dict(failures.get_dict())


@calcfunction
def evaluate_potential(potential: MtpPotentialData, validation_set: TrainingSetData) -> orm.Dict:
    """RMSE and MAX errors of ``potential`` on a labelled set (motep in-process: a few configurations).

    :return: ``{'validation': {'energy_per_atom': {'rmse', 'max'} [meV/atom], 'forces': ... [meV/Angstrom],
        'stress': ... [GPa], 'n'}}``, the layout of MtpTrainCalculation's ``errors``
        (:func:`aiida_mscale.mtp.train.evaluate_errors`).
    """
    from aiida_mscale.mtp.train import evaluate_errors

    missing = sorted(set(validation_set.species) - set(potential.species))
    if missing:
        raise ValueError(f'the validation set has species {missing} that the potential lacks')
    images = []
    for atoms in validation_set.to_ase():
        results = atoms.calc.results if atoms.calc is not None else {}
        if 'energy' not in results or 'forces' not in results:
            continue
        stress = None
        if 'stress' in results:
            from ase.stress import voigt_6_to_full_3x3_stress

            stress = voigt_6_to_full_3x3_stress(results['stress'])
        plain = atoms.copy()
        plain.calc = None
        plain.info['targets'] = {'energy': results['energy'], 'forces': results['forces'], 'stress': stress}
        images.append(plain)
    if not images:
        raise ValueError('the validation set holds no configuration with energy and forces')
    return orm.Dict({'validation': evaluate_errors(images, potential.get_calculator)})


@calcfunction
def merge_error_tables(fit: orm.Dict, validation: orm.Dict) -> orm.Dict:
    """The fit's error table (``training``, ``validation``) with ``validation`` taken from ``validation``."""
    return orm.Dict({**fit.get_dict(), 'validation': validation.get_dict()['validation']})
