"""``LammpsTrajectoryData`` (``mscale.lammps.trajectory``): reading LAMMPS dumps, storing, selecting.

The reference for the box and the positions is ASE's own reader of LAMMPS dumps (``lammps-dump-text``), which
is written independently of ours; the other numbers are checked against the text of the dump itself.
"""

import io

import numpy as np
import pytest

#: A triclinic box (tilts xy = 1.0, xz = 0.5, yz = -0.3): its BOX BOUNDS section (the bounding box of the tilted cell).
TRICLINIC_BOX = """ITEM: BOX BOUNDS xy xz yz pp pp pp
-0.5 7.5 1.0
-0.3 4.0 0.5
0.0 3.0 -0.3
"""
#: An orthogonal box with its origin at (1, 0, -2).
ORTHOGONAL_BOX = """ITEM: BOX BOUNDS pp pp pp
1.0 5.0
0.0 4.0
-2.0 2.0
"""
TRICLINIC_COLUMNS = 'id type element x y z ix iy iz vx vy vz'


def dump_frame(step: int, box: str, columns: str, rows: list[str]) -> str:
    """The text of one frame of a ``dump custom`` file: ``rows`` are its atom lines."""
    return f'ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{len(rows)}\n{box}ITEM: ATOMS {columns}\n' + ''.join(
        f'{row}\n' for row in rows
    )


#: Two frames of the triclinic box, atoms written out of id order, the second frame with atom 3 across the boundary
#: (image flag 1 along a).
TRICLINIC_FRAMES = (
    [
        '2 2 O 1.25 1.5 0.75 0 0 0 0.1 0.2 0.3',
        '3 1 Li 6.0 2.0 1.0 0 0 0 -0.1 0.0 0.1',
        '1 1 Li 0.5 0.5 0.5 0 0 0 0.0 0.0 0.0',
    ],
    [
        '1 1 Li 0.625 0.5 0.5 0 0 0 0.0 0.0 0.0',
        '2 2 O 1.25 1.625 0.75 0 0 0 0.1 0.2 0.3',
        '3 1 Li 0.25 2.0 1.0 1 0 0 -0.1 0.0 0.1',
    ],
)
TRICLINIC = ''.join(
    dump_frame(step, TRICLINIC_BOX, TRICLINIC_COLUMNS, rows) for step, rows in zip((0, 100), TRICLINIC_FRAMES)
)
ORTHOGONAL = dump_frame(5, ORTHOGONAL_BOX, 'id type x y z', ['1 1 2.0 2.0 0.0'])
#: A second frame in which GCMC inserted an atom (ids 1 and 2).
GCMC_SECOND_FRAME = dump_frame(10, ORTHOGONAL_BOX, 'id type x y z', ['2 1 1.0 1.0 1.0', '1 1 2.5 2.0 0.5'])


@pytest.fixture
def trajectory_data(aiida_profile):
    """The ``LammpsTrajectoryData`` class (imported once a profile is loaded)."""
    from aiida_mscale.data.lammps_trajectory import LammpsTrajectoryData

    return LammpsTrajectoryData


@pytest.fixture
def triclinic(trajectory_data):
    """The node of the two triclinic frames (not stored)."""
    return trajectory_data.from_dump(TRICLINIC)


def _ase_frames(text):
    from ase.io import read

    return read(io.StringIO(text), format='lammps-dump-text', index=':')


def test_triclinic_box_and_atoms_match_ase(triclinic):
    node = triclinic.store()
    frames = _ase_frames(TRICLINIC)
    assert node.number_steps == 2 and node.number_atoms == 3 and node.time_steps == [0, 100]
    assert node.symbols == ['Li', 'O', 'Li'] and node.ids.tolist() == [1, 2, 3] and node.types.tolist() == [1, 2, 1]
    assert node.base.attributes.get('elements') == ['Li', 'O']
    assert node.base.attributes.get('field_names') == 'id type element x y z ix iy iz vx vy vz'.split()
    cells = node.get_cells()
    positions = node.get_positions()
    for k, atoms in enumerate(frames):  # ASE orders the atoms by id too
        np.testing.assert_allclose(cells[k], atoms.cell[:], rtol=0, atol=1e-12)
        np.testing.assert_allclose(positions[k], atoms.positions, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(node.get_array('velocities')[0, 1], [0.1, 0.2, 0.3])  # atom id 2
    # unwrapping adds the lattice vector a = (lx, 0, 0) of the image flag: lx = 8 - (1.0 + 0.5) = 6.5
    unwrapped = node.get_positions(unwrap=True)
    np.testing.assert_allclose(unwrapped[1, 2], [0.25 + 6.5, 2.0, 1.0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(unwrapped[:, :2], positions[:, :2])
    assert node.is_unwrapped


def test_orthogonal_box(trajectory_data):
    node = trajectory_data.from_dump(ORTHOGONAL)
    (atoms,) = _ase_frames(ORTHOGONAL)
    np.testing.assert_array_equal(node.get_cells()[0], atoms.cell[:])
    np.testing.assert_array_equal(node.get_array('origins')[0], [1.0, 0.0, -2.0])
    assert node.symbols == ['1']  # no element column: the LAMMPS type
    assert node.base.attributes.get('elements') == [] and not node.is_unwrapped


@pytest.mark.parametrize(
    ('text', 'message'),
    [
        (TRICLINIC.replace('3 1 Li 0.25 2.0 1.0 1 0 0', '4 1 Li 0.25 2.0 1.0 1 0 0'), 'column `id` differs at frame 1'),
        (TRICLINIC.replace('1 1 Li 0.625', '1 2 Li 0.625'), 'column `type` differs at frame 1'),
        (TRICLINIC.replace('-0.1 0.0 0.1\n1 1', '-0.1 0.0\n1 1'), 'frame 0 of the dump is malformed'),
        (TRICLINIC.replace(' x y z ', ' xs ys zs '), 'no `x` column'),  # scaled coordinates are not read
        ('', 'no complete frame'),
        (ORTHOGONAL + GCMC_SECOND_FRAME, 'changes from 1 to 2'),
    ],
)
def test_a_dump_that_is_not_a_fixed_set_of_atoms_is_refused(trajectory_data, text, message):
    from aiida_mscale.data.lammps_trajectory import DumpError

    with pytest.raises(DumpError, match=message):
        trajectory_data.from_dump(text)


def test_a_frame_cut_by_the_end_of_the_file_is_left_out(trajectory_data, triclinic):
    for cut in (len(TRICLINIC) - 5, TRICLINIC.rindex('ITEM: ATOMS'), TRICLINIC.rindex('ITEM: TIMESTEP') + 8):
        node = trajectory_data.from_dump(TRICLINIC[:cut])
        assert node.time_steps == [0] and node.base.attributes.get('dropped_incomplete_frame') is True
    assert triclinic.base.attributes.get('dropped_incomplete_frame') is False


@pytest.mark.parametrize(
    ('text', 'last'),
    [
        (ORTHOGONAL + GCMC_SECOND_FRAME, GCMC_SECOND_FRAME),  # the number of atoms changes: read_dump refuses it
        (ORTHOGONAL + GCMC_SECOND_FRAME[:-3], ORTHOGONAL),  # the last number was cut while being written
        (ORTHOGONAL + GCMC_SECOND_FRAME[: GCMC_SECOND_FRAME.rindex('1 1 2.5')], ORTHOGONAL),  # an atom row is missing
    ],
)
def test_last_frame_of_a_dump_matches_ase(text, last):
    """The last complete frame (the restart point of a cut MD run), with ASE's reader of that frame as reference."""
    from aiida_mscale.data.lammps_trajectory import read_last_frame

    frame = read_last_frame(text)
    (reference,) = _ase_frames(last)
    assert frame['step'] == int(last.split()[2]) and frame['field_names'] == ['id', 'type', 'x', 'y', 'z']
    assert frame['ids'].tolist() == list(range(1, len(reference) + 1))
    np.testing.assert_array_equal(frame['cell'], reference.cell[:])
    np.testing.assert_array_equal(frame['positions'], reference.positions)
    np.testing.assert_array_equal(frame['origin'], [1.0, 0.0, -2.0])


def test_last_frame_as_atoms_for_a_restart():
    """``LammpsMtpBaseWorkChain``'s restart frame: positions from the box origin, symbols and velocities by id."""
    from aiida_mscale.workflows.lammps_mtp_base import read_last_frame

    frame = read_last_frame(TRICLINIC)
    (reference,) = _ase_frames(dump_frame(100, TRICLINIC_BOX, TRICLINIC_COLUMNS, TRICLINIC_FRAMES[1]))
    assert frame['step'] == 100 and frame['atoms'].get_chemical_symbols() == ['Li', 'O', 'Li']
    np.testing.assert_allclose(frame['atoms'].cell[:], reference.cell[:], rtol=0, atol=1e-12)
    # the origin (xlo, ylo, zlo) of the tilted box is (-0.5, 0, 0): positions are shifted by +0.5 along x
    np.testing.assert_allclose(frame['atoms'].positions, reference.positions + [0.5, 0.0, 0.0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(frame['velocities'], [[0.0, 0.0, 0.0], [0.1, 0.2, 0.3], [-0.1, 0.0, 0.1]])
    with pytest.raises(ValueError, match='no `element` column'):
        read_last_frame(ORTHOGONAL)
    with pytest.raises(ValueError, match='no complete frame'):
        read_last_frame(TRICLINIC[: TRICLINIC.index('ITEM: ATOMS') + 20])


def test_select_frames_species_and_precision(triclinic):
    node = triclinic
    small = node.select(frames=[1], species=['Li'], precision='float32', unwrap=True, velocities=False).store()
    assert small.time_steps == [100] and small.symbols == ['Li', 'Li'] and small.ids.tolist() == [1, 3]
    assert small.base.attributes.get('precision') == 'float32' and small.is_unwrapped
    assert 'velocities' not in small.array_names() and 'images' not in small.array_names()
    assert small.base.attributes.get('field_names') == ['id', 'type', 'element', 'x', 'y', 'z']
    expected = node.get_positions(unwrap=True)[[1]][:, [0, 2]]
    np.testing.assert_array_equal(small.get_positions(), expected.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(small.get_cells(), node.get_cells()[[1]])
    # the same frames give the same bytes (fixed zip entry dates): equal nodes hash equal
    assert node.select(frames=[1]).frames_file() == node.select(frames=[1]).frames_file()
    with pytest.raises(KeyError, match='no array `forces`'):
        node.get_array('forces')


def test_a_node_without_frames_is_not_stored(trajectory_data):
    from aiida.common.exceptions import ValidationError

    with pytest.raises(ValidationError, match='no frames were set'):
        trajectory_data().store()


def test_export_policies_rewrite_the_frames_file(trajectory_data):
    """``aiida-mscale export --trajectories subsampled|omitted`` on a LammpsTrajectoryData: the archive's file."""
    from aiida_mscale.cli.export import is_trajectory, trajectory_files
    from aiida_mscale.data.lammps_trajectory import FRAMES_FILE

    steps = (0, 100, 200, 300)
    text = ''.join(
        dump_frame(step, TRICLINIC_BOX, TRICLINIC_COLUMNS, TRICLINIC_FRAMES[k % 2]) for k, step in enumerate(steps)
    )
    node = trajectory_data.from_dump(text).store()
    assert is_trajectory(node) and node.time_steps == [0, 100, 200, 300]
    files, attributes = trajectory_files(node, 'subsampled', 3)
    assert attributes == {'number_steps': 2} and list(files) == [FRAMES_FILE]
    with np.load(io.BytesIO(files[FRAMES_FILE])) as archive:
        assert archive['steps'].tolist() == [0, 300]
        np.testing.assert_array_equal(archive['positions'], node.get_positions()[[0, 3]])
        np.testing.assert_array_equal(archive['velocities'], node.get_array('velocities')[[0, 3]])
    assert trajectory_files(node, 'omitted', 3) == ({}, {'number_steps': 0})
