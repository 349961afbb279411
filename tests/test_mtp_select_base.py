"""MtpSelectBaseWorkChain around the real ``mscale-mtp-select`` code (motep inside; no pw.x needed: grading uses
no labels).

The handlers are tested on fake children in ``tests/test_restart_handlers.py``; here one real run checks the wiring
(the calculation's outputs come out of the work chain) and a property of MaxVol that the code does not assert on
itself: every neighbourhood of the training set grades at most 1 against the active set built from it.
"""

import numpy as np
from ase.build import bulk


def test_select_base_runs_the_selection_and_exposes_its_outputs(mtp_select_code):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.data.mtp_potential import MtpPotentialData
    from aiida_mscale.data.training_set import TrainingSetData
    from aiida_mscale.mtp.potential_file import parse_mtp
    from aiida_mscale.workflows.mtp_select_base import MtpSelectBaseWorkChain

    mtp = parse_mtp(MtpPotentialData.from_template(6, ['Li'], min_dist=1.5, max_dist=4.5).get_text())
    rng = np.random.default_rng(3)
    mtp.scaling = 1.0
    mtp.species_coeffs = np.array([-1.9])
    mtp.moment_coeffs = rng.normal(0.0, 0.01, mtp.alpha_scalar_moments)
    mtp.radial_coeffs = rng.normal(0.0, 0.1, (1, 1, mtp.radial_funcs_count, mtp.radial_basis_size))
    potential = MtpPotentialData(mtp.to_text(), species=['Li'])

    def configurations(strains, rattle):
        images = []
        for k, strain in enumerate(strains):
            atoms = bulk('Li', 'bcc', a=3.43 * (1 + strain), cubic=True).repeat(2)
            atoms.rattle(rattle, seed=k)
            images.append(atoms)
        return TrainingSetData.from_arrays(
            numbers_of_atoms=[len(a) for a in images],
            cells=[a.cell.array for a in images],
            pbc=[[True] * 3] * len(images),
            positions=np.concatenate([a.positions for a in images]),
            atomic_numbers=np.concatenate([a.numbers for a in images]),
        )

    training_set = configurations([-0.02, 0.0, 0.02], 0.05)
    # candidate 0 is training configuration 0 itself (same strain and rattle seed); 1 and 2 lie far outside the set
    candidates = configurations([-0.02, -0.15, 0.15], 0.05)
    arrays = candidates.get_arrays()
    positions = arrays['positions'].copy()
    positions[16:] += np.random.default_rng(7).normal(0.0, 0.2, positions[16:].shape)
    candidates = TrainingSetData.from_arrays(
        numbers_of_atoms=arrays['numbers_of_atoms'],
        cells=arrays['cells'],
        pbc=arrays['pbc'],
        positions=positions,
        atomic_numbers=arrays['atomic_numbers'],
    )
    builder = MtpSelectBaseWorkChain.get_builder()
    builder.mtp.code = mtp_select_code
    builder.mtp.potential = potential
    builder.mtp.training_set = training_set
    builder.mtp.candidates = candidates
    builder.mtp.parameters = orm.Dict({'threshold': 1.1, 'max_count': 2})
    builder.mtp.metadata.options.max_wallclock_seconds = 600
    results, node = run_get_node(builder)

    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    (calculation,) = node.base.links.get_outgoing(node_class=orm.CalcJobNode).all_nodes()
    assert calculation.is_finished_ok
    for name in ('grades', 'potential', 'selection'):
        assert results[name].uuid == calculation.outputs[name].uuid
    assert ('selected' in results) == ('selected' in calculation.outputs)

    # MaxVol: the active set is built from the training set, so none of its neighbourhoods extrapolates
    active = results['potential']
    assert active.base.attributes.get('active_set_size') == mtp.alpha_scalar_moments + 1
    assert results['selection'].get_dict()['training_neighborhoods'] == 3 * 16
    grades = results['grades'].get_array('max_grades')
    selected = results['grades'].get_array('selected_indices')
    assert grades.shape == (3,) and np.all(np.isfinite(grades))
    assert grades[0] <= 1.0 + 1e-6  # a training configuration: interpolation
    assert grades[1:].max() > 1.1  # far outside the training set: extrapolation
    assert 0 not in selected and 1 <= len(selected) <= 2 and np.all(grades[selected] >= 1.1)
