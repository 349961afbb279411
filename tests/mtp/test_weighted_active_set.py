"""The active set of a training set with cut cells (mscale-mtp-select, aiida_mscale.mtp.select.select).

Only the rows of atoms with force weight > 0 (a cut's core atoms) may enter the MaxVol active set; without weight
features every row may, as before. Reference: motep's MaxVol run by hand on the rows of the weighted atoms only,
with the same seed; and the unweighted run, whose active set does take rows of the cut's surface atoms.
"""

import json

import numpy as np
import pytest
from ase.build import bulk

from aiida_mscale.mtp import MtpPotential, generate_untrained_mtp
from aiida_mscale.mtp.cfg import CfgConfiguration, weight_features, write_cfg
from aiida_mscale.mtp.neighbourhood import cut_neighbourhood

pytestmark = pytest.mark.unit


def _write(path, images, weights=None):
    configurations = [
        CfgConfiguration(
            types=np.zeros(len(atoms), dtype=int),
            positions=atoms.positions,
            cell=atoms.cell.array,
            features={} if weights is None or weights[k] is None else weight_features(0.0, 0.0, weights[k]),
        )
        for k, atoms in enumerate(images)
    ]
    path.write_text(write_cfg(configurations))


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    import motep.io.mlip.mtp as motep_mtp

    folder = tmp_path_factory.mktemp('select')
    template = generate_untrained_mtp(8, species_count=1, min_dist=2.0, max_dist=4.0).write(folder / 'l8.mtp')
    data = motep_mtp.read_mtp(str(template))
    data.species = [29]
    data.initialize(np.random.default_rng(2))
    MtpPotential.from_motep(data).write(folder / 'potential.mtp')
    bulk_cells = []
    for i in range(2):
        atoms = bulk('Cu', 'fcc', a=3.61, cubic=True).repeat((2, 2, 1))
        atoms.rattle(0.1, seed=40 + i)
        bulk_cells.append(atoms)
    large = bulk('Cu', 'fcc', a=3.61, cubic=True).repeat(3)
    large.rattle(0.1, seed=9)
    cut = cut_neighbourhood(large, 0, r_core=3.0, r_mtp=4.0)  # the centre and its 12 neighbours are core
    assert cut.number_of_core_atoms == 13
    candidates = bulk('Cu', 'fcc', a=3.61, cubic=True).repeat((2, 2, 1))
    candidates.rattle(0.3, seed=5)
    _write(folder / 'candidates.cfg', [candidates])
    return folder, bulk_cells + [cut.atoms], [None, None, cut.force_weights]


def _select(folder, name, images, weights):
    from aiida_mscale.mtp.select import select

    _write(folder / f'{name}.cfg', images, weights)
    inputs = {
        'species': ['Cu'],
        'potential': 'potential.mtp',
        'training': f'{name}.cfg',
        'candidates': 'candidates.cfg',
        'layout': 'moment+species',
        'threshold': 1.1,
        'max_count': 1,
        'engine': 'cext',
        'seed': 42,
    }
    summary = select(inputs, workdir=folder)
    active = (folder / 'active_set.als').read_text()
    return summary, active, json.loads((folder / 'selection.json').read_text())


def test_only_weighted_atoms_enter_the_active_set(setup):
    import motep.io.mlip.mtp as motep_mtp
    from motep.grade.maxvol import MaxVol

    from aiida_mscale.mtp.select import MAXVOL_DEFAULTS, OPTIMIZED, neighborhood_matrix

    folder, images, weights = setup
    summary, _, _ = _select(folder, 'weighted', images, weights)
    allowed = np.concatenate([np.ones(len(a), bool) if w is None else w > 0 for a, w in zip(images, weights)])
    assert summary['training_neighborhoods'] == 16 + 16 + 13
    indices = np.array(summary['training_indices'])
    assert len(indices) == summary['active_set_size'] and np.all(allowed[indices])

    # reference: motep's MaxVol on the weighted atoms' rows, same seed and settings
    data = motep_mtp.read_mtp(str(folder / 'potential.mtp'))
    data.species = [29]
    data.optimized = list(OPTIMIZED['moment+species'])
    rows = neighborhood_matrix(data, images)[allowed]
    settings = dict(MAXVOL_DEFAULTS)
    maxvol = MaxVol(rng=np.random.default_rng(42), **settings)
    expected = np.flatnonzero(allowed)[np.asarray(maxvol.run(rows).indices)]
    assert sorted(indices.tolist()) == sorted(expected.tolist())


def test_without_weights_the_cut_surface_would_enter(setup):
    folder, images, weights = setup
    summary, _, _ = _select(folder, 'plain', images, None)
    surface = np.concatenate([np.zeros(len(a), bool) if w is None else w == 0 for a, w in zip(images, weights)])
    assert summary['training_neighborhoods'] == 16 + 16 + len(images[2])
    assert np.any(surface[np.array(summary['training_indices'])])
