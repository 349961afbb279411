"""Plots of a :class:`~aiida_mscale.workflows.multiscale.MultiscaleWorkChain`, for ``aiida-mscale report <pk>``.

- ``provenance_summary_<pk>.png``: the run at workflow level, readable at a glance: each stage a box (its work chain,
  PK, state and the number of pw.x calculations it ran), the data handed from stage to stage as ellipses (the
  potential, the guest's E0, D(x), OCV(x), the summary), arrows in the direction of the data flow. ``verdi node
  graph generate`` draws every node instead;
- ``handover_tables_<pk>.png``: D(x) [m^2/s] and OCV(x) [V] as they entered the electrode stage, with their 1-sigma
  bands (the ensemble draws from these sigmas);
- the plots of every stage that has its own (active learning, MD production, thermodynamics, transport, electrode),
  in sub-folders named after the stage.
"""

from __future__ import annotations

import pathlib

import numpy as np

from aiida_mscale.cli.report import AXES_KEY, plotter_for, register

PW_PROCESS_TYPE = 'aiida.calculations:quantumespresso.pw'
#: call-link label -> the stage's name in the picture
STAGES = {
    'reference': 'guest reference (DFT EOS)',
    'active_learning': 'active learning (GCMC-MD, MTP)',
    'md_production': 'MD production (T, x)',
    'thermodynamics': 'thermodynamics (hull, V(x), volume)',
    'electrode': 'electrode (continuum, ensemble)',
}
#: outputs drawn as data nodes: output name -> the stage (call-link label prefix) that makes it
HANDOVER = {
    'potential': 'active_learning',
    'guest_reference_energy': 'reference',
    'diffusivity': 'transport',
    'ocv': 'thermodynamics',
    'rate_capability_band': 'electrode',
    'summary': 'electrode',
}
#: the stages that read each hand-over (by call-link label prefix)
READERS = {
    'potential': ('md_production', 'thermodynamics'),
    'guest_reference_energy': ('thermodynamics',),
    'diffusivity': ('electrode',),
    'ocv': ('electrode',),
}


def _pw_count(process) -> int:
    """pw.x calculations called by ``process``, at any depth (CALL links: QueryBuilder's ancestors follow data)."""
    return sum(1 for node in process.called_descendants if node.process_type == PW_PROCESS_TYPE)


def _state(process) -> str:
    state = process.process_state.value if process.process_state else 'unknown'
    if state == 'finished':
        return 'ok' if process.is_finished_ok else f'failed [{process.exit_status}]'
    return state


def provenance_summary(workchain):
    """A graphviz ``Digraph`` of the run: stages (boxes) and hand-over data (ellipses); see the module docstring."""
    import graphviz
    from aiida import orm
    from aiida.common.links import LinkType

    graph = graphviz.Digraph(name=f'multiscale_{workchain.pk}', graph_attr={'rankdir': 'LR', 'fontsize': '11'})
    graph.attr('node', fontname='Helvetica', fontsize='10')
    total = _pw_count(workchain)
    graph.node(
        'root',
        f'MultiscaleWorkChain<{workchain.pk}>\\n{_state(workchain)}; {total} pw.x calculations in all',
        shape='box',
        style='filled',
        fillcolor='#dddddd',
    )
    called = workchain.base.links.get_outgoing(node_class=orm.WorkflowNode, link_type=LinkType.CALL_WORK).all()
    stages = {}
    for triple in sorted(called, key=lambda t: t.node.ctime):
        label = triple.link_label
        group = 'transport' if label.startswith('transport_') else label
        stages.setdefault(group, []).append(triple.node)
    for group, processes in stages.items():
        name = STAGES.get(group, 'transport (D(T) per x, Arrhenius)' if group == 'transport' else group)
        pks = ', '.join(str(p.pk) for p in processes)
        states = sorted({_state(p) for p in processes})
        count = sum(_pw_count(p) for p in processes)
        text = f'{name}\\n{processes[0].process_label}<{pks}>\\n{"/".join(states)}; {count} pw.x'
        colour = '#cfe8cf' if states == ['ok'] else '#f4d7d7' if any('fail' in s for s in states) else '#fff2c6'
        graph.node(f'stage_{group}', text, shape='box', style='filled,rounded', fillcolor=colour)
        graph.edge('root', f'stage_{group}', style='dotted', arrowhead='none')
    outputs = workchain.outputs
    for name, maker in HANDOVER.items():
        if name not in outputs:
            continue
        node = outputs[name]
        graph.node(f'data_{name}', f'{name}\\n{node.__class__.__name__}<{node.pk}>', shape='ellipse')
        if maker in stages:
            graph.edge(f'stage_{maker}', f'data_{name}')
        else:  # given as an input: the chain was entered here
            graph.edge('root', f'data_{name}', label='given', style='dashed')
        for reader in READERS.get(name, ()):
            if reader in stages:
                graph.edge(f'data_{name}', f'stage_{reader}')
    return graph


def draw_handover_tables(diffusivity, ocv):
    """D(x) on a log axis and OCV(x), each with its 1-sigma band, on the electrode's state of charge."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 3.6), layout='constrained')
    left, right = figure.subplots(1, 2)
    x, d = diffusivity.get_array('x'), diffusivity.get_array('D')
    sigma = diffusivity.get_array('D_sigma') if 'D_sigma' in diffusivity.get_arraynames() else np.zeros_like(d)
    left.semilogy(x, d, 'o-', color='C0', label='D(x)')
    # the draw model is log-normal: the 1-sigma band is D exp(+-sigma/D)
    left.fill_between(x, d * np.exp(-sigma / d), d * np.exp(sigma / d), color='C0', alpha=0.25, label='1 sigma')
    left.set_xlabel('state of charge of the window')
    left.set_ylabel('D [m$^2$/s]')
    temperature = diffusivity.base.attributes.get('temperature', None)
    left.set_title(f'D(x) at {temperature:g} K' if temperature else 'D(x)')
    left.legend(frameon=False)
    y, v = ocv.get_array('x'), ocv.get_array('V')
    v_sigma = ocv.get_array('V_sigma') if 'V_sigma' in ocv.get_arraynames() else np.zeros_like(v)
    right.plot(y, v, '-', color='C3', label='OCV(x)')
    right.fill_between(y, v - v_sigma, v + v_sigma, color='C3', alpha=0.25, label='1 sigma')
    right.set_xlabel('state of charge of the window')
    right.set_ylabel('OCV [V]')
    right.set_title('OCV(x)')
    right.legend(frameon=False)
    return figure


def _save(figure, path: pathlib.Path) -> pathlib.Path:
    figure.savefig(path, dpi=110, metadata={AXES_KEY: str(len(figure.axes))})
    return path


@register('aiida.workflows:mscale.multiscale')
def plot_multiscale(workchain, output_dir: pathlib.Path) -> list[pathlib.Path]:
    """The provenance summary, the hand-over tables and every stage's own plots (see the module docstring)."""
    from aiida import orm
    from aiida.common.links import LinkType

    paths = []
    graph = provenance_summary(workchain)
    target = output_dir / f'provenance_summary_{workchain.pk}'
    paths.append(
        pathlib.Path(graph.render(filename=target.name, directory=str(output_dir), format='png', cleanup=True))
    )
    outputs = workchain.outputs
    if 'diffusivity' in outputs and 'ocv' in outputs:
        figure = draw_handover_tables(outputs.diffusivity, outputs.ocv)
        paths.append(_save(figure, output_dir / f'handover_tables_{workchain.pk}.png'))
    called = workchain.base.links.get_outgoing(node_class=orm.WorkflowNode, link_type=LinkType.CALL_WORK).all()
    for triple in called:
        plot = plotter_for(triple.node)
        if plot is None or not triple.node.is_finished:
            continue
        folder = output_dir / triple.link_label
        folder.mkdir(exist_ok=True)
        try:
            paths.extend(plot(triple.node, folder))
        except (KeyError, ValueError) as exception:  # a stage without the outputs its plot needs
            (folder / 'not-plotted.txt').write_text(f'{triple.node.process_label}<{triple.node.pk}>: {exception}\n')
    return paths


__all__ = ['draw_handover_tables', 'plot_multiscale', 'provenance_summary']
