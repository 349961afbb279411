"""Physical constants and unit conversions used across aiida-mscale, all from :mod:`scipy.constants`.

One source: SI 2019 (CODATA 2018 and later; ``k``, ``e``, ``N_A`` and ``R`` are exact). ASE's :mod:`ase.units`
defaults to CODATA 2014 (``ase.units.GPa`` = 1 / 160.21766208 eV/Angstrom^3, relative difference 8e-9 from the
value here): use these names, not ``ase.units``, for conversions the package reports.

Pure: imports no AiiDA, so analysis/, mtp/, pseudo/ and structures/ may use it. The continuum solver scripts run
under another Python with only their own folder on the path, so ``continuum/common.py`` takes the same values from
:mod:`scipy.constants` directly.
"""

from scipy import constants as _c

#: Boltzmann constant [J/K]
BOLTZMANN_J = _c.k
#: Boltzmann constant [eV/K]
BOLTZMANN_EV = _c.k / _c.e
#: elementary charge [C]
ELEMENTARY_CHARGE = _c.e
#: Faraday constant [C/mol]
FARADAY = _c.N_A * _c.e
#: molar gas constant [J/(mol K)]
GAS_CONSTANT = _c.R
#: 1 eV/Angstrom^3 in GPa (e [C] * 1e30 [Angstrom^3/m^3] / 1e9 [Pa/GPa])
EV_PER_ANG3_IN_GPA = _c.e * 1e21
