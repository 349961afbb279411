"""Transport and structure analysis of MD trajectories: pure functions on numpy arrays.

No AiiDA import here: the workflows wrap these functions as calcfunctions.

Conventions: positions (n_frames, n_atoms, 3) in Angstrom; cells (3, 3) or (n_frames, 3, 3)
in Angstrom with rows = lattice vectors; time in ps; species as a sequence of symbols.
Bad input raises ``ValueError`` with a message naming the problem.

Modules
-------
msd          unwrapping (triclinic, per-frame cells), FFT tracer / collective MSD
diffusion    D with 1-sigma (generalised least squares, or independent blocks), Haven ratio,
             Nernst-Einstein conductivity, framework drift correction
msd_gls      analytic MSD covariance across lags (random walk + noise) and the GLS line fit
arrhenius    Arrhenius / two-regime / VTF fits, AICc/BIC verdict, apparent Ea(T), extrapolation
rdf          periodic radial distribution functions, first-minimum cutoffs
descriptors  per-ion sliding-window descriptors (motion, site hopping, coordination, voids, clusters)
modes        diffusion modes: Gaussian-mixture components merged into modes, documented label rule
importance   random-forest regression of mobility with held-out permutation importance
environments Steinhardt-based local environments, classes and a trained classifier
polyhedra    bond-angle variance, quadratic elongation, off-centring of coordination polyhedra
"""

import importlib

# public name -> submodule; loaded lazily (PEP 562) so that e.g. the MSD/diffusion layer works
# without importing scikit-learn
_EXPORTS = {
    'apparent_activation_energy': 'arrhenius',
    'arrhenius_fit': 'arrhenius',
    'compare_models': 'arrhenius',
    'extrapolate': 'arrhenius',
    'two_regime_fit': 'arrhenius',
    'vtf_fit': 'arrhenius',
    'ion_descriptors': 'descriptors',
    'DiffusivityResult': 'diffusion',
    'collective_diffusivity': 'diffusion',
    'haven_ratio': 'diffusion',
    'nernst_einstein_conductivity': 'diffusion',
    'number_density': 'diffusion',
    'tracer_diffusivity': 'diffusion',
    'gls_msd_fit': 'msd_gls',
    'msd_covariance': 'msd_gls',
    'EnvironmentModel': 'environments',
    'class_fractions': 'environments',
    'fit_environment_classes': 'environments',
    'local_environment_descriptors': 'environments',
    'mobility_importance': 'importance',
    'diffusion_modes': 'modes',
    'ion_modes': 'modes',
    'label_mode': 'modes',
    'collective_msd': 'msd',
    'msd_by_species': 'msd',
    'msd_fft': 'msd',
    'tracer_msd': 'msd',
    'unwrap_positions': 'msd',
    'polyhedral_distortion': 'polyhedra',
    'polyhedron_distortion': 'polyhedra',
    'first_minimum': 'rdf',
    'radial_distribution': 'rdf',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f'.{_EXPORTS[name]}', __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
