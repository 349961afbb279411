"""Process handlers of PseudoGenerationBaseWorkChain on fake child nodes (no ld1.x runs).

Each test instantiates the work chain, gives it a finished child ``CalcJobNode`` with a chosen exit code (and the
outputs the handler needs), calls ``inspect_process`` and asserts on the exit code returned, the inputs of the next
run and the outputs attached.
"""

import io

import pytest

GENERATE = 'aiida.calculations:mscale.pseudo.generate'


def _fake_child(exit_status, outputs=None, attributes=None, message=None):
    """A finished ld1.x ``CalcJobNode`` with ``exit_status`` (and ``message``) and the given ``outputs``."""
    from aiida import orm
    from aiida.common.links import LinkType
    from plumpy.process_states import ProcessState

    node = orm.CalcJobNode(computer=orm.load_computer('localhost'), process_type=GENERATE)
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_status)
    if message:
        node.set_exit_message(message)
    node.set_process_label('PseudoGenerationCalculation')
    for key, value in (attributes or {}).items():
        node.base.attributes.set(key, value)
    node.store()
    for label, output in (outputs or {}).items():
        output.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=label)
        output.store()
    return node


@pytest.fixture
def generation_workchain(ld1_code):
    from aiida import orm
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    from aiida_mscale.workflows.pseudo_generation_base import PseudoGenerationBaseWorkChain

    inputs = {
        'generate': {
            'code': ld1_code,
            'element': orm.Str('Li'),
            'functional': orm.Str('PBE'),
            'metadata': {'options': {'max_wallclock_seconds': 300}},
        }
    }
    process = instantiate_process(get_manager().get_runner(), PseudoGenerationBaseWorkChain, **inputs)
    process.setup()
    return process


def _inspect(process, child):
    process.ctx.children = [child]
    process.ctx.iteration = 1
    return process.inspect_process()


def _upf():
    """A real PAW dataset (Debian's Li PBEsol file, as the setup's family holds it) as a new, unstored UpfData."""
    from aiida import orm
    from aiida_pseudo.data.pseudo.upf import UpfData

    li = orm.load_group('mscale/debian-qe/PBEsol').get_pseudo('Li')
    return UpfData(io.BytesIO(li.get_content().encode()), filename=li.filename)


@pytest.mark.parametrize('exit_status', [300, 301, 310])
def test_missing_output_or_failed_generation_aborts(generation_workchain, exit_status):
    """ld1.x is deterministic: a failed generation or a missing file is not retried."""
    result = _inspect(generation_workchain, _fake_child(exit_status))
    assert result.status == generation_workchain.exit_codes.ERROR_UNRECOVERABLE_FAILURE.status == 300


@pytest.mark.parametrize('exit_status', [311, 312])
def test_dataset_failing_a_test_is_attached_and_marked(generation_workchain, exit_status):
    """A dataset that fails a test configuration or has a ghost: its outputs are attached, exit 310, no rerun."""
    from aiida import orm

    pseudo, report = _upf(), orm.Dict({'passed': False, 'ghosts': ['s: -1.2 Ry below 2s']})
    child = _fake_child(
        exit_status, {'pseudo': pseudo, 'transferability': report}, message='the dataset has a ghost state'
    )
    result = _inspect(generation_workchain, child)
    assert result.status == generation_workchain.exit_codes.ERROR_DATASET_FAILED_TESTS.status == 310
    outputs = generation_workchain.outputs  # emitted; linked to the node when the work chain finishes
    assert outputs['pseudo'].uuid == pseudo.uuid
    assert outputs['transferability'].uuid == report.uuid
    assert (
        'ghost' in generation_workchain.exit_codes.ERROR_DATASET_FAILED_TESTS.format(message=child.exit_message).message
    )


def test_out_of_walltime_reruns_with_twice_the_walltime(generation_workchain):
    result = _inspect(generation_workchain, _fake_child(120))
    assert result is None or result.status == 0
    assert generation_workchain.ctx.inputs.metadata.options.max_wallclock_seconds == 600
    assert generation_workchain.ctx.inputs.element.value == 'Li'


def test_unhandled_failure_aborts(generation_workchain):
    """A failure no handler knows (here a scheduler error, 110) stops with BaseRestartWorkChain's 402 (its default
    ``on_unhandled_failure``: abort), without a rerun."""
    result = _inspect(generation_workchain, _fake_child(110))
    assert result.status == 402
    assert generation_workchain.ctx.inputs.metadata.options.max_wallclock_seconds == 300


def test_refuses_a_code_of_another_plugin(pw_code):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.pseudo_generation_base import PseudoGenerationBaseWorkChain

    builder = PseudoGenerationBaseWorkChain.get_builder()
    builder.generate.code = pw_code
    builder.generate.element = orm.Str('Li')
    builder.generate.functional = orm.Str('PBE')
    with pytest.raises(ValueError, match='mscale.pseudo.generate'):
        run_get_node(builder)


def test_refuses_an_element_without_parameters(ld1_code):
    """The calculation's own validation (element without generation parameters) holds in the work chain too."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mscale.workflows.pseudo_generation_base import PseudoGenerationBaseWorkChain

    builder = PseudoGenerationBaseWorkChain.get_builder()
    builder.generate.code = ld1_code
    builder.generate.element = orm.Str('Xe')
    builder.generate.functional = orm.Str('PBE')
    with pytest.raises(ValueError, match='Xe'):
        run_get_node(builder)
