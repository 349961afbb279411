"""DftLabelingWorkChain with real pw.x: labels equal a direct pw.x run; failures are recorded and skipped."""

import pathlib
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.units import Bohr, Hartree

#: Cheap but real settings: low cutoffs, coarse k-points, and an SCF budget of 10 steps with no restart
#: (``max_iterations: 1``). bcc Li converges in 7 SCF steps; non-magnetic bcc Fe (a sharp d-band at the Fermi
#: level) needs about 37 from scratch, so it cannot converge within the budget. (With a restart allowed,
#: PwBaseWorkChain continues from the last charge density and Fe converges after ~20 steps in all: measured.)
OVERRIDES = {
    'max_concurrent': 2,
    'pw_base': {
        'max_iterations': 1,
        'kpoints_distance': 0.6,
        'pw': {'parameters': {'SYSTEM': {'ecutwfc': 25.0, 'ecutrho': 200.0}, 'ELECTRONS': {'electron_maxstep': 10}}},
    },
}
OPTIONS = {'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}, 'max_wallclock_seconds': 600}


def _configurations():
    from aiida import orm

    rattled = bulk('Li', 'bcc', a=3.43, cubic=True)
    rattled.rattle(0.05, seed=1)
    strained = bulk('Li', 'bcc', a=3.43, cubic=True)
    strained.set_cell(strained.cell.array @ np.diag([1.03, 1.0, 0.98]), scale_atoms=True)
    strained.rattle(0.03, seed=2)
    iron = bulk('Fe', 'bcc', a=2.83, cubic=True)
    return {
        'li_rattled': orm.StructureData(ase=rattled),
        'li_strained': orm.StructureData(ase=strained),
        'fe_nonmagnetic': orm.StructureData(ase=iron),
    }


def _direct_pw_run(calculation, workdir: pathlib.Path):
    """Run pw.x by hand on the very input file the calculation ran, and read its XML (our own reader)."""
    workdir.mkdir()
    (workdir / 'pseudo').mkdir()
    (workdir / 'aiida.in').write_text(calculation.base.repository.get_object_content('aiida.in'))
    for link in calculation.base.links.get_incoming().all():
        if link.link_label.startswith('pseudos__'):
            upf = link.node
            with upf.open(mode='rb') as source, open(workdir / 'pseudo' / upf.filename, 'wb') as target:
                shutil.copyfileobj(source, target)
    subprocess.run(['pw.x', '-in', 'aiida.in'], cwd=workdir, check=True, capture_output=True, timeout=600)
    root = ET.parse(workdir / 'out' / 'aiida.save' / 'data-file-schema.xml').getroot()
    output = root.find('output')
    energy = float(output.find('total_energy/etot').text) * Hartree
    forces = np.array(output.find('forces').text.split(), dtype=float).reshape(-1, 3) * Hartree / Bohr
    # pw.x's stress is -(1/V) dE/d(strain); TrainingSetData keeps ASE's +(1/V) dE/d(strain).
    stress = -np.array(output.find('stress').text.split(), dtype=float).reshape(3, 3) * Hartree / Bohr**3
    return energy, forces, stress


def test_labelling_with_one_unconvergeable_configuration(pw_code, tmp_path):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.data.training_set import TrainingSetData
    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    structures = _configurations()
    builder = DftLabelingWorkChain.get_builder_from_protocol(
        pw_code, structures, protocol='fast', overrides=OVERRIDES, options=OPTIONS
    )
    results, node = run_get_node(builder)

    assert node.exit_status == 0, node.exit_message
    training_set = results['training_set']
    assert isinstance(training_set, TrainingSetData)
    assert len(training_set) == 2 and training_set.number_labelled == 2

    failures = results['failures'].get_dict()
    assert list(failures) == ['fe_nonmagnetic']
    assert failures['fe_nonmagnetic']['structure_uuid'] == structures['fe_nonmagnetic'].uuid
    assert failures['fe_nonmagnetic']['exit_status'] == 401  # PwBaseWorkChain: maximum iterations exceeded
    failed_workchain = orm.load_node(failures['fe_nonmagnetic']['process_uuid'])
    (failed_calculation,) = [c for c in failed_workchain.called if isinstance(c, orm.CalcJobNode)]
    assert failed_calculation.exit_status == 410  # PwCalculation: electronic minimization not converged

    reports = [log.message for log in orm.Log.collection.get_logs_for(node)]
    assert any('labelled 2/3, 1 failed' in message for message in reports), reports

    # Rolling pool (max_concurrent 2): the third configuration started when the first of the two running ones
    # finished, not after both (Fe needs its full 10 SCF steps, Li converges in 7, so they end apart).
    first, second, third = sorted(node.called, key=lambda child: child.ctime)[:3]
    finished = sorted([first.mtime, second.mtime])
    assert finished[0] <= third.ctime < finished[1], (finished, third.ctime)

    # Each label equals a direct pw.x run of the same input, read by an independent XML reader.
    images = training_set.to_ase()
    for k, (label, atoms) in enumerate(zip(['li_rattled', 'li_strained'], images)):
        calculation = orm.load_node(atoms.info['source_uuid'])
        assert calculation.process_type == 'aiida.calculations:quantumespresso.pw'
        assert calculation.inputs.structure.uuid == structures[label].uuid
        energy, forces, stress = _direct_pw_run(calculation, tmp_path / label)
        assert atoms.get_potential_energy() == pytest.approx(energy, rel=1e-6)
        np.testing.assert_allclose(atoms.get_forces(), forces, rtol=1e-6, atol=1e-6 * np.abs(forces).max())
        np.testing.assert_allclose(
            training_set.get_array('stresses')[k], stress, rtol=1e-6, atol=1e-6 * np.abs(stress).max()
        )
        assert np.abs(forces).max() > 1e-3  # the rattled/strained cells really carry forces to compare
        np.testing.assert_allclose(atoms.positions, structures[label].get_ase().positions, atol=1e-10)

    # Provenance: each PwCalculation's output_trajectory feeds the calcfunction that made the training set.
    query = orm.QueryBuilder()
    query.append(TrainingSetData, filters={'uuid': training_set.uuid}, tag='set')
    query.append(orm.CalcFunctionNode, with_outgoing='set', tag='build')
    query.append(orm.TrajectoryData, with_outgoing='build', tag='trajectory')
    query.append(orm.CalcJobNode, with_outgoing='trajectory', project='uuid')
    assert sorted(query.all(flat=True)) == sorted(training_set.get_array('source_uuids').tolist())


# ------------------------------------------------------------------------------------------ bad input
def _launch(builder):
    from aiida.engine import run

    return run(builder)


def test_empty_structure_list_is_refused(pw_code):
    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    with pytest.raises(ValueError, match='no structures given'):
        DftLabelingWorkChain.get_builder_from_protocol(pw_code, [], protocol='fast')
    builder = DftLabelingWorkChain.get_builder_from_protocol(pw_code, _configurations(), protocol='fast')
    builder.structures = {}
    with pytest.raises(ValueError, match='no structures given'):
        _launch(builder)


def test_species_outside_the_pseudo_family_is_refused(pw_code):
    from aiida import orm

    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    copper = orm.StructureData(ase=bulk('Cu', 'fcc', a=3.6))
    with pytest.raises(ValueError, match=r"species \['Cu'\] have no pseudopotential in family"):
        DftLabelingWorkChain.get_builder_from_protocol(pw_code, [copper], protocol='fast')
    builder = DftLabelingWorkChain.get_builder_from_protocol(pw_code, _configurations(), protocol='fast')
    builder.structures = {**_configurations(), 'copper': copper}
    with pytest.raises(ValueError, match=r"structure `copper` has species \['Cu'\] with no pseudopotential"):
        _launch(builder)


def test_code_of_the_wrong_plugin_is_refused(pw_code):
    from aiida import orm

    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    wrong = orm.InstalledCode(
        label='not-pw',
        computer=pw_code.computer,
        filepath_executable='/bin/true',
        default_calc_job_plugin='core.arithmetic.add',
    ).store()
    builder = DftLabelingWorkChain.get_builder_from_protocol(pw_code, _configurations(), protocol='fast')
    builder.pw_base.pw.code = wrong
    with pytest.raises(
        ValueError, match=r'is for plugin `core.arithmetic.add`, but labelling needs a `quantumespresso.pw`'
    ):
        _launch(builder)


def test_overlapping_atoms_are_refused(pw_code):
    from aiida import orm

    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    clash = orm.StructureData(ase=Atoms('Li2', positions=[[0, 0, 0], [0.2, 0.0, 0.1]], cell=[4, 4, 4], pbc=True))
    # the periodic image counts too: an atom 0.3 Angstrom from its neighbour across the boundary
    across = orm.StructureData(ase=Atoms('Li2', positions=[[0.1, 0, 0], [3.8, 0, 0]], cell=[4, 4, 4], pbc=True))
    for structure, distance in ((clash, '0.224'), (across, '0.300')):
        builder = DftLabelingWorkChain.get_builder_from_protocol(pw_code, {'bad': structure}, protocol='fast')
        with pytest.raises(
            ValueError, match=f'structure `bad` has overlapping atoms: two atoms are {distance} Angstrom'
        ):
            _launch(builder)


@pytest.mark.parametrize(
    ('atoms', 'message'),
    [
        (
            Atoms('Li2', positions=[[0, 0, 0], [1.7, 1.7, 1.7]], cell=[3.4, 3.4, 3.4], pbc=(True, True, False)),
            r'is not periodic in all three directions \(pbc=\(True, True, False\)\)',
        ),
        (Atoms('Li2', positions=[[0, 0, 0], [1.7, 1.7, 1.7]], pbc=False), 'is not periodic in all three'),
        (
            Atoms('Li2', positions=[[0, 0, 0], [1.7, 1.7, 1.7]], cell=[[3.4, 0, 0], [0, 3.4, 0], [0, 0, 0]], pbc=True),
            r'has no cell \(a zero or non-finite cell vector\)',
        ),
        (
            Atoms(
                'Li2', positions=[[0, 0, 0], [1.7, 1.7, 1.7]], cell=[[3.4, 0, 0], [0, 3.4, 0], [3.4, 3.4, 0]], pbc=True
            ),
            'has linearly dependent cell vectors',
        ),
    ],
    ids=['slab', 'molecule', 'no_cell', 'dependent_cell'],
)
def test_cells_pw_cannot_label_are_refused(pw_code, atoms, message):
    from aiida import orm

    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    builder = DftLabelingWorkChain.get_builder_from_protocol(pw_code, _configurations(), protocol='fast')
    builder.structures = {'bad': orm.StructureData(ase=atoms)}
    with pytest.raises(ValueError, match=f'structure `bad` {message}'):
        _launch(builder)


def test_kind_names_that_are_not_elements(pw_code):
    """Kinds Li1/Li2 (ASE tags) and a long site name pw.x cannot read are labelled as the plain element cell.

    The reference is the same configuration with kinds named by element, labelled in the same run: energies,
    forces and stresses agree to the SCF threshold, and the training set lists Li for every atom.
    """
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.dft_labeling import DftLabelingWorkChain

    atoms = bulk('Li', 'bcc', a=3.43, cubic=True)
    atoms.rattle(0.05, seed=3)
    plain = orm.StructureData(ase=atoms)
    tagged_atoms = atoms.copy()
    tagged_atoms.set_tags([1, 2])
    tagged = orm.StructureData(ase=tagged_atoms)
    assert tagged.get_kind_names() == ['Li1', 'Li2']
    long_names = orm.StructureData(cell=atoms.cell.array, pbc=(True, True, True))
    for k, position in enumerate(atoms.positions):
        long_names.append_atom(position=position, symbols='Li', name=f'bcc_site{k}')
    structures = {'a_plain': plain, 'b_tagged': tagged, 'c_long_names': long_names}
    overrides = {**OVERRIDES, 'max_concurrent': 3}
    builder = DftLabelingWorkChain.get_builder_from_protocol(
        pw_code, structures, protocol='fast', overrides=overrides, options=OPTIONS
    )
    results, node = run_get_node(builder)
    assert node.exit_status == 0, node.exit_message
    training_set = results['training_set']
    assert training_set.species == ['Li'] and len(training_set) == 3
    energies = training_set.get_array('energies')
    forces = training_set.get_array('forces').reshape(3, 2, 3)
    assert energies[1] == pytest.approx(energies[0], abs=1e-5) and energies[2] == pytest.approx(energies[0], abs=1e-5)
    np.testing.assert_allclose(forces[1], forces[0], atol=1e-4)
    np.testing.assert_allclose(forces[2], forces[0], atol=1e-4)
    assert np.abs(forces[0]).max() > 1e-3
    # the long names went to pw.x as the element, through a calcfunction in the graph
    calculation = orm.load_node(training_set.get_array('source_uuids')[2])
    assert calculation.inputs.structure.get_kind_names() == ['Li']
    assert calculation.inputs.structure.creator.process_label == 'relabel_kinds_by_element'
    tagged_calculation = orm.load_node(training_set.get_array('source_uuids')[1])
    assert tagged_calculation.inputs.structure.uuid == tagged.uuid
