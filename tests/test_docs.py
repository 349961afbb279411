"""The documentation: the Sphinx site builds without a warning, and the examples of README.md and docs/ run.

- `test_sphinx_site_builds_without_warnings`: ``sphinx-build -W --keep-going -b html docs <tmp>`` (what ``make docs``
  runs), then the key pages: the CLI reference lists every ``aiida-mscale`` command (``launch multiscale`` among
  them), the API page of a work chain lists its spec's inputs, the how-to pages are in the site.
- `test_example`: every fenced block preceded by ``<!-- doctest -->`` in README.md or docs/*.md is run and its
  output compared with the one printed in the page: ``pycon`` blocks through :mod:`doctest` (ELLIPSIS,
  NORMALIZE_WHITESPACE), ``console`` blocks command by command (``$ aiida-mscale ...`` / ``$ verdi ...`` through
  their click objects, in the test profile), ``python`` blocks executed (they must not raise).
- Examples that need pw.x, LAMMPS or dolfinx are not run here: the page names the test that runs the same thing
  (``<!-- tested-by: tests/test_x.py::test_name -->`` before the block), and `test_tested_by_references_exist`
  checks that the named test exists.
"""

import doctest
import pathlib
import re
import shlex

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / 'docs'
PAGES = [ROOT / 'README.md', *sorted(DOCS.glob('*.md'))]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
BLOCK = re.compile(
    r'^<!-- (doctest|tested-by: (?P<test>\S+)) -->\s*\n```(?P<lang>\w+)[^\n]*\n(?P<body>.*?)^```', re.M | re.S
)


def marked_blocks(kind):
    """(page, line, language, body, test) of every fenced block marked ``kind`` (`doctest` or `tested-by`)."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in BLOCK.finditer(text):
            if match.group(1).startswith(kind):
                line = text[: match.start('body')].count('\n') + 1
                found.append((page, line, match.group('lang'), match.group('body'), match.group('test')))
    return found


def _id(block):
    return f'{block[0].relative_to(ROOT)}:{block[1]}'


# -------------------------------------------------------------------------------------------------- the site
@pytest.fixture(scope='module')
def site(sphinx_site):
    """The HTML site, built as CI builds it: every warning is an error, all of them reported (the build runs in the
    background from the start of the session: ``sphinx_site`` in tests/conftest.py)."""
    result = sphinx_site.build
    warnings = [line for line in result.stderr.splitlines() if 'WARNING' in line or 'ERROR' in line]
    assert result.returncode == 0 and not warnings, '\n'.join(warnings) or result.stderr[-3000:]
    return sphinx_site.html


def _text(html_file):
    """The visible text of a page (tags dropped, whitespace collapsed)."""
    return ' '.join(re.sub(r'<[^>]+>', ' ', html_file.read_text()).split())


# the build takes ~30 s of CPU: `make test` runs it, `make test-fast` (the unit layer) does not
pytestmark_site = pytest.mark.integration


@pytestmark_site
def test_sphinx_site_builds_without_warnings(site):
    for page in ('index', 'getting-started', 'cli-reference', 'api', 'continuum', 'dft_labeling', 'design'):
        assert (site / f'{page}.html').is_file(), page
    # every how-to page of docs/ is in the site (the glob of the index's toctree picks up new ones)
    for page in DOCS.glob('*.md'):
        assert (site / f'{page.stem}.html').is_file(), page.name


@pytestmark_site
def test_cli_reference_lists_every_command(site):
    from aiida_mscale.cli import cmd_root

    text = _text(site / 'cli-reference.html')
    assert 'aiida-mscale launch multiscale' in text
    for name, command in cmd_root.commands.items():
        assert f'aiida-mscale {name}' in text, name
        for sub in getattr(command, 'commands', {}):
            assert f'aiida-mscale {name} {sub}' in text, (name, sub)
    assert 'verdi data mscale.training_set export' in text and 'verdi data mscale.mtp show' in text


@pytestmark_site
def test_api_page_of_a_work_chain_lists_its_inputs(site):
    from aiida_mscale.workflows.electrode import ElectrodeWorkChain

    text = _text(site / 'api' / 'aiida_mscale.workflows.html')
    heading = re.search(r'class aiida_mscale\.workflows\.electrode\.\s*ElectrodeWorkChain\b', text)
    assert heading, 'ElectrodeWorkChain is not documented'
    following = re.search(r'class aiida_mscale\.', text[heading.end() :])
    section = text[heading.start() : heading.end() + following.start() if following else None]  # up to the next class
    spec = ElectrodeWorkChain.spec()
    inputs = [name for name in spec.inputs if name != 'metadata']
    assert inputs and 'Inputs' in section and 'Outputs' in section and 'Exit codes' in section
    for name in inputs:
        assert f'{name} (' in section, name
    for label, code in spec.exit_codes.items():
        assert f'{code.status} {label}' in section, label
    # a continuum solver documented from its docstring although dolfinx cannot be imported here
    assert 'UnphysicalStateError' in _text(site / 'api' / 'aiida_mscale.continuum.html')


# ---------------------------------------------------------------------------------------------- the examples
def _run_console(body):
    """Each `$ command` of a console block, its output compared with the lines that follow it in the page."""
    from click.testing import CliRunner

    from aiida_mscale.cli import cmd_root

    commands = []
    for line in body.splitlines():
        if line.startswith('$ '):
            commands.append([line[2:], []])
        else:
            commands[-1][1].append(line)
    checker = doctest.OutputChecker()
    for command, want in commands:
        args = shlex.split(command, comments=True)
        if args[0] == 'aiida-mscale':
            result = CliRunner().invoke(cmd_root, args[1:], prog_name='aiida-mscale', catch_exceptions=False)
        elif args[:2] == ['verdi', 'data']:
            from aiida.cmdline.commands.cmd_data import verdi_data

            result = CliRunner().invoke(verdi_data, args[2:], prog_name='verdi data', catch_exceptions=False)
        else:
            raise AssertionError(f'a doctest console block runs aiida-mscale or verdi data commands, not `{command}`')
        assert result.exit_code == 0, (command, result.output)
        expected = '\n'.join(want) + '\n'
        assert checker.check_output(expected, result.output, FLAGS), (
            f'`{command}` printed\n{result.output}\nthe page shows\n{expected}'
        )


@pytest.mark.parametrize('block', marked_blocks('doctest'), ids=_id)
def test_example(block, aiida_profile):
    """The example as written; its ``load_profile(...)`` loads the test profile instead."""
    import aiida

    page, line, lang, body, _ = block
    if lang == 'console':
        _run_console(body)
        return
    original = aiida.load_profile
    aiida.load_profile = lambda *args, **kwargs: aiida_profile
    try:
        if lang == 'pycon':
            test = doctest.DocTestParser().get_doctest(body, {}, page.name, str(page), line - 1)
            runner = doctest.DocTestRunner(optionflags=FLAGS)
            runner.run(test)
            assert runner.failures == 0, f'{page.name}:{line}: {runner.failures} example(s) printed something else'
        elif lang == 'python':
            exec(compile('\n' * (line - 1) + body, str(page), 'exec'), {'__name__': '__docs__'})  # noqa: S102
        else:
            raise AssertionError(f'{page.name}:{line}: no runner for ```{lang} blocks')
    finally:
        aiida.load_profile = original


def test_examples_are_found():
    """The marker is in use: at least the getting-started page has runnable examples of each kind."""
    languages = {(block[0].name, block[2]) for block in marked_blocks('doctest')}
    assert {('getting-started.md', 'console'), ('getting-started.md', 'pycon')} <= languages


@pytest.mark.parametrize('block', marked_blocks('tested-by'), ids=_id)
def test_tested_by_references_exist(block):
    """An example that needs pw.x, LAMMPS or dolfinx names the test that runs it: that test exists."""
    page, line, _, _, test = block
    path, _, name = test.partition('::')
    source = ROOT / path
    assert source.is_file(), f'{page.name}:{line}: {path} does not exist'
    assert re.search(rf'^def {re.escape(name)}\(', source.read_text(), re.M), f'{page.name}:{line}: no {test}'
