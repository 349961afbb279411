"""Entry point of the continuum solvers: ``python solver.py input.json``.

Reads one JSON object; its ``model`` key selects the solver:

    particle_diffusion   single spherical particle, voltage curves and rate capability
    polycrystal          2-D Voronoi polycrystal, effective diffusivity D_eff(grain size, T)
    phase_field          Cahn-Hilliard particle (sphere 1-D or disk 2-D), phase-boundary position,
                         voltage plateau; galvanostatic, potentiostatic or closed
    porous_electrode     pseudo-2-D (Newman) half cell: discharge curves and rate capability

Common keys: ``model`` (required), ``output_dir`` (default: the folder of input.json),
``write_xdmf`` (bool, default false). Array inputs may be inline lists, ``"name.npy"`` or
``"name.npz:key"`` (paths relative to the folder of input.json). Each model's keys and units are in
the docstring of its module.

Outputs (in output_dir): ``results.json`` (``status``, ``model``, units, scalars, small tables and
the names of the arrays), ``results.npz`` (named arrays), XDMF fields when asked. On failure
``results.json`` holds ``{"status": "error", "exit_code": N, "error_type": ..., "message": ...}``,
the message goes to stderr, and the process exits with::

    0 ok   2 bad input (refused before any solve)   3 non-convergence
    4 unphysical state (negative / over-full concentration, non-finite field)   5 internal error

Runs on Debian's /usr/bin/python3 with python3-dolfinx (0.5) and on dolfinx 0.7-0.10; imports
nothing from aiida. Can be run from a copied folder (``python solver.py``) or as
``python -m aiida_mscale.continuum.solver``.
"""

import json
import os
import sys
import traceback

try:
    from . import common
except ImportError:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import common

MODELS = ('particle_diffusion', 'polycrystal', 'phase_field', 'porous_electrode')


def _load_model(name):
    from importlib import import_module

    return import_module(f'{__package__}.{name}' if __package__ else name)


def main(argv=None, model=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print('usage: python solver.py input.json', file=sys.stderr)
        return common.EXIT_BAD_INPUT
    path = os.path.abspath(argv[0])
    base_dir = os.path.dirname(path)
    out_dir = base_dir
    try:
        try:
            with open(path) as f:
                inp = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            raise common.InputError(f'cannot read input file {path}: {exc}') from None
        common.require(isinstance(inp, dict), 'input.json must hold one JSON object')
        out_dir = inp.get('output_dir') or base_dir
        if not os.path.isabs(out_dir):
            out_dir = os.path.join(base_dir, out_dir)
        name = inp.get('model', model)
        common.require(name in MODELS, f"unknown or missing 'model' {name!r}; choose one of {list(MODELS)}")
        if model is not None and name != model:
            raise common.InputError(f"this script runs model '{model}', input asks for '{name}'")
        mod = _load_model(name)
        summary = mod.run(inp, base_dir=base_dir, out_dir=out_dir)
        print(json.dumps({'status': 'ok', 'model': name, 'wall_time': summary.get('wall_time')}))
        return common.EXIT_OK
    except common.InputError as exc:
        return _fail(out_dir, common.EXIT_BAD_INPUT, exc)
    except common.ConvergenceError as exc:
        return _fail(out_dir, common.EXIT_NOT_CONVERGED, exc)
    except common.UnphysicalStateError as exc:
        return _fail(out_dir, common.EXIT_UNPHYSICAL, exc)
    except Exception as exc:  # noqa: BLE001 - report anything else as an internal error
        traceback.print_exc()
        return _fail(out_dir, common.EXIT_INTERNAL, exc)


def _fail(out_dir, code, exc):
    kind = {2: 'input', 3: 'convergence', 4: 'unphysical', 5: 'internal'}[code]
    msg = f'{type(exc).__name__}: {exc}'
    print(f'ERROR ({kind}): {exc}', file=sys.stderr)
    try:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, 'results.json'), 'w') as f:
            json.dump({'status': 'error', 'exit_code': code, 'error_type': kind, 'message': msg}, f, indent=1)
    except OSError:
        pass
    return code


if __name__ == '__main__':
    sys.exit(main())
