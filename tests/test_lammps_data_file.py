"""The production LAMMPS data-file writer (aiida_mscale.lammps.data_file) against ASE's reader: a triclinic cell
goes through the file unchanged (in LAMMPS's frame), velocities included. No LAMMPS binary needed."""

import io

import numpy as np
import pytest
from ase import Atoms


def _triclinic():
    """A skewed, rotated, right-handed triclinic cell with three species (one without atoms), rattled."""
    cell = np.array([[4.1, 0.3, -0.2], [1.3, 3.9, 0.4], [-0.7, 0.9, 5.2]])
    rng = np.random.default_rng(4)
    atoms = Atoms('Li3CoO2', scaled_positions=rng.uniform(0, 1, (6, 3)), cell=cell, pbc=True)
    return atoms, rng.normal(0.0, 5.0, (6, 3))  # velocities [Angstrom/ps]


def test_a_triclinic_cell_round_trips_through_ase():
    from ase.io.lammpsdata import read_lammps_data
    from ase.units import fs

    from aiida_mscale.lammps.data_file import data_text, lammps_cell

    atoms, velocities = _triclinic()
    assert np.linalg.det(atoms.cell.array) > 0
    species = [3, 8, 27, 11]  # Li, O, Co and a type without atoms (Na)
    text = data_text(atoms, species, velocities=velocities)
    read = read_lammps_data(io.StringIO(text), atom_style='atomic', units='metal', Z_of_type={1: 3, 2: 8, 3: 27, 4: 11})
    cell, rotation = lammps_cell(atoms.cell.array)
    # LAMMPS's frame: a along x, b in the xy plane; the same cell rotated (lengths and angles unchanged)
    np.testing.assert_allclose(read.cell.array, cell, rtol=0, atol=1e-14)
    np.testing.assert_allclose(read.cell.cellpar(), atoms.cell.cellpar(), rtol=1e-13)
    np.testing.assert_allclose(read.cell.array, atoms.cell.array @ rotation, rtol=0, atol=1e-13)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-14)  # a rotation, not a distortion
    assert read.get_chemical_symbols() == atoms.get_chemical_symbols()
    # the same positions: exactly the rotated ones (17 digits), and the same fractional coordinates
    np.testing.assert_allclose(read.positions, atoms.positions @ rotation, rtol=0, atol=1e-13)
    np.testing.assert_allclose(read.get_scaled_positions(wrap=False), atoms.get_scaled_positions(), atol=1e-13)
    # velocities: ASE reads metal units (Angstrom/ps) into its own (Angstrom / (1000 fs) per ps)
    np.testing.assert_allclose(read.get_velocities() * 1000 * fs, velocities @ rotation, rtol=1e-13, atol=1e-13)
    assert '4 atom types' in text


def test_the_writer_refuses_what_it_cannot_write():
    from aiida_mscale.lammps.data_file import data_text

    atoms, velocities = _triclinic()
    with pytest.raises(ValueError, match=r'atomic numbers \[27\] have no atom type'):
        data_text(atoms, [3, 8])
    velocities[2, 1] = np.nan
    with pytest.raises(ValueError, match='velocity must be finite'):
        data_text(atoms, [3, 8, 27], velocities=velocities)
    with pytest.raises(ValueError, match=r'shape \(6, 3\)'):
        data_text(atoms, [3, 8, 27], velocities=velocities[:2])


def test_no_production_module_imports_the_testing_helpers():
    """lammps/testing.py is for tests and checks by hand: no CalcJob, parser, work chain or function imports it."""
    import pathlib
    import re

    import aiida_mscale

    root = pathlib.Path(aiida_mscale.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob('*.py')
        if path.name != 'testing.py' and re.search(r'lammps\.testing|lammps import testing', path.read_text())
    ]
    assert offenders == [], offenders


def test_the_restart_header_reader_refuses_what_is_not_a_restart_file():
    """restart_timestep reads the step of real restart files (tests/test_lammps_mtp.py); anything else is refused."""
    import struct

    from aiida_mscale.lammps.inputs import restart_timestep

    header = b'LammpS RestartT\0' + struct.pack('<ii', 1, 3)
    version = struct.pack('<ii', 0, 12) + b'22 Jul 2025\0'
    step = struct.pack('<iq', 5, 1234)
    assert restart_timestep(header + version + struct.pack('<ii', 1, 4) + step) == 1234
    with pytest.raises(ValueError, match='no magic string'):
        restart_timestep(b'LAMMPS data file\n')
    with pytest.raises(ValueError, match='truncated'):
        restart_timestep(header + version[:10])
    with pytest.raises(ValueError, match='unknown header record 77'):
        restart_timestep(header + struct.pack('<ii', 77, 0) + step)
