"""Sphinx configuration of the aiida-mscale documentation (``make docs``; built with ``-W`` by tests/test_docs.py).

The pages are MyST markdown (the how-to pages in docs/ are used as they are), the CLI reference is generated from
click (sphinx-click) and the API reference from the docstrings (autodoc, one page per subpackage). The continuum
solvers run under dolfinx, which the main environment does not have: those imports are mocked.
"""

import os
import re
import sys

sys.path.insert(0, os.path.abspath('..'))

from sphinx.util import logging  # noqa: E402

import aiida_mscale  # noqa: E402

logger = logging.getLogger('aiida_mscale.docs')

project = 'aiida-mscale'
author = 'aiida-mscale developers'
copyright = 'aiida-mscale developers'  # noqa: A001
release = version = aiida_mscale.__version__

extensions = [
    'myst_parser',
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx_click',
    'sphinxcontrib.mermaid',
]

source_suffix = {'.md': 'markdown', '.rst': 'restructuredtext'}
exclude_patterns = ['_build', '**/.ipynb_checkpoints']
root_doc = 'index'

# MyST: the how-to pages link to each other and to source files with plain relative links; headings get anchors
myst_enable_extensions = ['colon_fence', 'deflist']
myst_heading_anchors = 3
# ```mermaid blocks (rendered by GitHub as diagrams) are diagrams here too
myst_fence_as_directive = ['mermaid']

# autodoc: one page per subpackage (docs/api/*.rst, written at build time by _write_api_pages)
autodoc_default_options = {
    'members': True,
    'show-inheritance': True,
    'member-order': 'bysource',
    'ignore-module-all': True,  # a package's __all__ re-exports what its modules document
}
autodoc_typehints = 'description'
autodoc_mock_imports = ['dolfinx', 'ufl', 'basix', 'petsc4py']
napoleon_google_docstring = True
napoleon_numpy_docstring = True

html_theme = 'furo'
html_title = f'aiida-mscale {release}'
html_static_path = []


# -- the inputs, outputs and exit codes of every process class, from its spec ------------------------------------

_RST_SPECIAL = re.compile(r'([\\*`|_])')


def _escape(text):
    """Plain help text of a port, safe inside reStructuredText; `code` (markdown style) becomes a literal."""
    parts = ' '.join(str(text).split()).split('`')
    if len(parts) % 2 == 0:  # an unpaired backtick: all of it as plain text
        parts = ['`'.join(parts)]
    return ''.join(
        f'\\ ``{part}``\\ ' if k % 2 and part.strip() == part and part else _RST_SPECIAL.sub(r'\\\1', part)
        for k, part in enumerate(parts)
    )


def _valid_types(port):
    types = getattr(port, 'valid_type', None)
    if types is None:
        return ''
    types = types if isinstance(types, tuple) else (types,)
    return ', '.join(t.__name__ for t in types)


def _port_lines(namespace, depth, prefix=''):
    """One bullet per port, namespaces nested to ``depth`` levels."""
    from plumpy.ports import PortNamespace

    lines = []
    for name, port in namespace.items():
        if name.startswith('_') or name == 'metadata':
            continue
        required = 'required' if port.required else 'optional'
        if isinstance(port, PortNamespace):
            kind = 'namespace' + (', dynamic' if port.dynamic else '')
            lines.append(
                f'{prefix}* ``{name}`` ({kind}, {required})' + (f' -- {_escape(port.help)}' if port.help else '')
            )
            if depth > 1 and len(port):
                lines.append('')
                lines += _port_lines(port, depth - 1, prefix + '  ')
                lines.append('')
        else:
            types = _valid_types(port)
            kind = f'{types}, {required}' if types else required
            lines.append(f'{prefix}* ``{name}`` ({kind})' + (f' -- {_escape(port.help)}' if port.help else ''))
    return lines


def _document_process_spec(app, what, name, obj, options, lines):
    """Append the spec of a CalcJob / WorkChain / calcfunction class to its autodoc docstring."""
    import inspect

    from aiida.engine import Process

    if what != 'class' or not inspect.isclass(obj) or not issubclass(obj, Process):
        return
    try:
        spec = obj.spec()
    except AttributeError:  # an abstract base (MscaleRestartWorkChain: no process class to wrap)
        return
    lines += ['', '.. rubric:: Inputs', '']
    lines += _port_lines(spec.inputs, depth=2) or ['(none)']
    lines += ['', '.. rubric:: Outputs', '']
    lines += _port_lines(spec.outputs, depth=2) or ['(none)']
    codes = sorted(spec.exit_codes.items(), key=lambda item: item[1].status)
    if codes:
        lines += ['', '.. rubric:: Exit codes', '']
        lines += [f'* ``{code.status}`` ``{label}`` -- {_escape(code.message)}' for label, code in codes]
    lines.append('')


# -- docstrings that are not valid reStructuredText are shown verbatim -------------------------------------------
# Many docstrings are written as plain text (ASCII formulas such as |a|, indented continuation lines). Each raw
# docstring is parsed with docutils first (cross-reference roles stand in as literals); one that gives a docutils
# warning is shown as a literal block, exactly as written, instead of breaking the -W build or rendering garbled.

_ROLE = re.compile(r':[a-z]+(?::[a-z]+)?:`([^`]*)`')
_VERBATIM = {}
_SETTINGS = None


def _rst_problems(app, lines):
    """The docutils warnings and errors of a docstring (empty: it is valid reStructuredText)."""
    import io

    from docutils import nodes
    from docutils.frontend import get_default_settings
    from docutils.parsers.rst import Parser
    from docutils.utils import new_document

    global _SETTINGS
    if _SETTINGS is None:  # building the settings is the slow part of a docutils parse: once
        _SETTINGS = get_default_settings(Parser)
        _SETTINGS.report_level, _SETTINGS.halt_level = 2, 5
        _SETTINGS.file_insertion_enabled = _SETTINGS.raw_enabled = False
    _SETTINGS.env = app.env  # Sphinx's role and directive lookup is active while reading
    _SETTINGS.warning_stream = stream = io.StringIO()
    document = new_document('<docstring>', _SETTINGS)
    Parser().parse(_ROLE.sub(lambda match: '``' + match.group(1) + '``', '\n'.join(lines)), document)
    problems = stream.getvalue()
    # what docutils reports only in its transforms: |x| (an undefined substitution), name_ or [1]_ (a link target)
    for node in document.findall(
        lambda node: (
            isinstance(node, (nodes.substitution_reference, nodes.footnote_reference))
            or 'refname' in getattr(node, 'attributes', {})
        )
    ):
        problems += f'{node.tagname}: {node.astext()}\n'
    return problems


def _check_docstring(app, what, name, obj, options, lines):
    """Before napoleon: remember a docstring that is not valid reStructuredText."""
    if lines and _rst_problems(app, lines):
        _VERBATIM[name] = list(lines)
        logger.info('docstring of %s is not valid reStructuredText: shown verbatim', name)


def _verbatim_docstring(app, what, name, obj, options, lines):
    """After napoleon: such a docstring becomes a literal block of its raw text."""
    if name in _VERBATIM:
        lines[:] = ['.. code-block:: text', ''] + ['   ' + line if line else '' for line in _VERBATIM[name]] + ['']


# -- the API pages: every module of the package, one page per subpackage -----------------------------------------


def _api_modules():
    """{page: [module, ...]}: the public modules of aiida_mscale grouped by subpackage (top-level modules together)."""
    import pkgutil

    pages = {}
    for info in pkgutil.walk_packages(aiida_mscale.__path__, 'aiida_mscale.'):
        parts = info.name.split('.')
        if any(part.startswith('_') for part in parts[1:]):  # private helpers, and lammps/__main__ (it builds)
            continue
        page = (
            info.name if info.ispkg and len(parts) == 2 else ('.'.join(parts[:2]) if len(parts) > 2 else 'aiida_mscale')
        )
        pages.setdefault(page, []).append(info.name)
    return pages


def _write_api_pages(app):
    """docs/api/<subpackage>.rst with an automodule for each module (new modules are picked up by themselves)."""
    import pathlib

    folder = pathlib.Path(app.srcdir) / 'api'
    folder.mkdir(exist_ok=True)
    pages = _api_modules()
    for page, modules in sorted(pages.items()):
        title = page if page != 'aiida_mscale' else 'aiida_mscale (top-level modules)'
        text = [title, '=' * len(title), '']
        for module in [page] + sorted(set(modules) - {page}):
            if module != page:
                text += [module, '-' * len(module), '']
            text += [f'.. automodule:: {module}', '']
        path = folder / f'{page}.rst'
        if not path.is_file() or path.read_text() != '\n'.join(text):
            path.write_text('\n'.join(text))
    for stale in folder.glob('*.rst'):
        if stale.stem not in pages:
            stale.unlink()


def setup(app):
    app.connect('builder-inited', _write_api_pages)
    app.connect('autodoc-process-docstring', _check_docstring, priority=100)
    app.connect('autodoc-process-docstring', _verbatim_docstring, priority=800)
    app.connect('autodoc-process-docstring', _document_process_spec, priority=900)
