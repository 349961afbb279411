"""Untrained Moment Tensor Potential (MTP) templates in MLIP's ``.mtp`` layout.

Pure Python (numpy only), no AiiDA import.

Science
-------
The moment tensors of a neighbourhood of atom *i* are (Shapeev 2016)

    M_{mu,nu} = sum_j f_mu(|r_ij|) r̂_ij ⊗ ... ⊗ r̂_ij      (nu factors),

of level ``lev(M_{mu,nu}) = 2 + 4 mu + nu``.  A basis function is a contraction to a
scalar of a product of moment tensors; its level is the sum of the levels of its
factors.  Such a contraction is a multigraph: one vertex per factor ``M_{mu,nu}``
(of degree nu), one edge per pair of contracted indices.  Self-loops are left out
(the trace of a moment of unit vectors is a moment of lower rank) and tensors are
symmetric, so two isomorphic multigraphs give the same function.

MLIP's published untrained templates (levels 2..28) contain every such contraction
with total level <= the MTP level **and at most four moment tensors** (a product of
scalars counts all its factors: ``M_00^4`` is in the level-8 basis, ``M_00^5`` is not
in the level-12 one).  This rule reproduces the published ``alpha_scalar_moments``,
``alpha_index_basic_count`` and ``radial_funcs_count`` of levels 8, 12, 18 and 24.

How it is computed (``alpha_index_times``)
-----------------------------------------
A connected basis function is evaluated as a chain of pairwise contractions (the
running tensor is contracted with one more moment tensor at each step), with the
order chosen by :func:`_chain_order`.  Every intermediate tensor is kept in the
*exact* form: its open indices are grouped by the vertex they belong to, each group
being symmetric, so a component is addressed by one monomial per group.  Components
whose expression (the multiset of ``multiplicity * m_i * m_j`` terms) is identical
are stored once (e.g. ``(A.A)_{xy} == (A.A)_{yx}``), across all basis functions.
Products of scalars are built factor by factor (``s1*s2*s3 = (s1*s2)*s3``), so every
partial product is itself a basis function.

Status against MLIP's files: the basis (``alpha_scalar_moments``), the basic moments
(``alpha_index_basic_count``) and ``radial_funcs_count`` equal the published ones at
levels 8, 12, 18 and 24, and the table sizes (``alpha_moments_count``,
``alpha_index_times_count``) equal them at levels 8 and 12.  MLIP's choice of
intermediate tensors for 3- and 4-tensor contractions at higher levels was not
recovered, so the tables there differ in size (level 18: 713 moments / 2637 rows vs
MLIP's 718 / 2634; level 24: 5720 / 39510 vs 4991 / 36170): same functions, computed
through other intermediates.  The tables are exact (tested: rotation invariance and
agreement with ``np.einsum`` of the full tensors), only their size differs.

Odd levels: MLIP ships even levels only.  Every basis function has an even level
(2 per tensor + 4 mu + the ranks nu, and the ranks of a full contraction add up to an
even number), so an odd level L is accepted and gives exactly the template of L - 1.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from math import factorial
from pathlib import Path

from .potential_file import MtpTableCounts

__all__ = [
    'MAX_TENSORS',
    'BasisGraph',
    'MtpTemplate',
    'basis_graphs',
    'generate_untrained_mtp',
    'moment_level',
]

#: maximum number of moment tensors in one basis function (MLIP's convention)
MAX_TENSORS = 4


def moment_level(mu: int, nu: int) -> int:
    """Level of the moment tensor M_{mu,nu}: 2 + 4 mu + nu."""
    return 2 + 4 * mu + nu


# --------------------------------------------------------------------------------------
# monomials (components of symmetric tensors)
# --------------------------------------------------------------------------------------
@cache
def monomials(rank: int) -> tuple[tuple[int, int, int], ...]:
    """Powers (a1, a2, a3) of x, y, z with a1+a2+a3 = rank, in MLIP's order.

    x-powers descending, then y-powers descending: for rank 2
    xx, xy, xz, yy, yz, zz.
    """
    return tuple((a, b, rank - a - b) for a in range(rank, -1, -1) for b in range(rank - a, -1, -1))


@cache
def _multinomial(n: tuple[int, int, int]) -> int:
    return factorial(n[0] + n[1] + n[2]) // (factorial(n[0]) * factorial(n[1]) * factorial(n[2]))


def _add(a: tuple[int, int, int], b: tuple[int, int, int]) -> tuple[int, int, int]:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


# --------------------------------------------------------------------------------------
# enumeration of the basis: contraction multigraphs
# --------------------------------------------------------------------------------------
Label = tuple[int, int]  # (mu, nu)


@dataclass(frozen=True)
class BasisGraph:
    """One connected contraction: vertices (mu, nu), edges {(a, b): multiplicity}."""

    vertices: tuple[Label, ...]
    edges: tuple[tuple[tuple[int, int], int], ...]

    @property
    def level(self) -> int:
        return sum(moment_level(mu, nu) for mu, nu in self.vertices)

    def multiplicity(self, a: int, b: int) -> int:
        if a > b:
            a, b = b, a
        for (i, j), m in self.edges:
            if (i, j) == (a, b):
                return m
        return 0


def _label_multisets(level: int, labels: list[Label], max_vertices: int):
    """Sorted multisets of labels (nu >= 1) with >= 2 members, level sum <= level."""
    out = []

    def rec(start, current, total):
        if len(current) >= 2 and sum(nu for _, nu in current) % 2 == 0:
            out.append(tuple(current))
        if len(current) == max_vertices:
            return
        for i in range(start, len(labels)):
            lab = labels[i]
            lev = moment_level(*lab)
            if total + lev > level:
                continue
            current.append(lab)
            rec(i, current, total + lev)
            current.pop()

    rec(0, [], 0)
    return out


def _graphs_on(vertices: tuple[Label, ...]):
    """All connected loop-free multigraphs with the given degrees, up to isomorphism."""
    n = len(vertices)
    degrees = [nu for _, nu in vertices]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    groups: dict[Label, list[int]] = {}
    for i, v in enumerate(vertices):
        groups.setdefault(v, []).append(i)
    perms = []
    for combo in itertools.product(*[list(itertools.permutations(g)) for g in groups.values()]):
        p = [0] * n
        for g, pg in zip(groups.values(), combo):
            for a, b in zip(g, pg):
                p[a] = b
        perms.append(p)
    found = set()
    result = []
    mult = [0] * len(pairs)

    def connected():
        seen = {0}
        stack = [0]
        while stack:
            a = stack.pop()
            for (i, j), m in zip(pairs, mult):
                if m and (i == a or j == a):
                    b = j if i == a else i
                    if b not in seen:
                        seen.add(b)
                        stack.append(b)
        return len(seen) == n

    def rec(k, remaining):
        if k == len(pairs):
            if any(remaining) or not connected():
                return
            canon = min(
                tuple(sorted((tuple(sorted((p[i], p[j]))), m) for (i, j), m in zip(pairs, mult) if m)) for p in perms
            )
            if canon not in found:
                found.add(canon)
                result.append(canon)
            return
        i, j = pairs[k]
        for m in range(min(remaining[i], remaining[j]), -1, -1):
            remaining[i] -= m
            remaining[j] -= m
            mult[k] = m
            # vertex i gets no more edges after its last pair
            last_of_i = k + 1 == len(pairs) or pairs[k + 1][0] != i
            if not (last_of_i and remaining[i]):
                rec(k + 1, remaining)
            remaining[i] += m
            remaining[j] += m
        mult[k] = 0

    rec(0, list(degrees))
    return result


def basis_graphs(level: int, max_tensors: int = MAX_TENSORS) -> list[BasisGraph]:
    """Connected contractions with level <= ``level`` and <= ``max_tensors`` tensors."""
    out = []
    for mu in range(level):
        if moment_level(mu, 0) <= level:
            out.append(BasisGraph(((mu, 0),), ()))
    labels = [(mu, nu) for mu in range(level) for nu in range(1, level) if moment_level(mu, nu) <= level]
    for vertices in _label_multisets(level, labels, max_tensors):
        for edges in _graphs_on(vertices):
            out.append(BasisGraph(vertices, edges))
    out.sort(key=lambda g: (g.level, len(g.vertices), g.vertices, g.edges))
    return out


# --------------------------------------------------------------------------------------
# the contraction tables
# --------------------------------------------------------------------------------------
@dataclass
class _Tensor:
    """An (intermediate) tensor of one basis function: groups of open indices.

    ``vertices[g]`` is the graph vertex owning group g, ``ranks[g]`` its number of
    open indices; ``components`` maps one monomial per group to a moment index.
    """

    vertices: tuple[int, ...]
    ranks: tuple[int, ...]
    components: dict


class _Builder:
    def __init__(self, basic_labels: list[Label]):
        self.basic_index: dict[tuple[int, tuple[int, int, int]], int] = {}
        self.alpha_index_basic: list[tuple[int, int, int, int]] = []
        for mu, nu in basic_labels:
            for mono in monomials(nu):
                self.basic_index[(mu, mono)] = len(self.alpha_index_basic)
                self.alpha_index_basic.append((mu, *mono))
        self.n_moments = len(self.alpha_index_basic)
        self.expressions: dict[tuple, int] = {}
        self.alpha_index_times: list[tuple[int, int, int, int]] = []

    def new_moment(self, terms: Counter) -> int:
        expression = tuple(sorted(terms.items()))
        index = self.expressions.get(expression)
        if index is None:
            index = self.n_moments
            self.n_moments += 1
            self.expressions[expression] = index
            for (i, j), m in expression:
                self.alpha_index_times.append((i, j, m, index))
        return index

    def basic(self, mu: int, nu: int, vertex: int) -> _Tensor:
        comps = {(mono,): self.basic_index[(mu, mono)] for mono in monomials(nu)}
        return _Tensor((vertex,), (nu,), comps)

    def contract(self, x: _Tensor, y: _Tensor, graph: BasisGraph) -> _Tensor:
        """Contract all edges of ``graph`` between the vertices of x and of y."""
        cm = [[graph.multiplicity(a, b) for b in y.vertices] for a in x.vertices]
        left_x = [x.ranks[i] - sum(cm[i]) for i in range(len(x.vertices))]
        left_y = [y.ranks[j] - sum(cm[i][j] for i in range(len(x.vertices))) for j in range(len(y.vertices))]
        if min(left_x + left_y) < 0:  # pragma: no cover - guarded by construction
            raise RuntimeError('inconsistent contraction')
        pairs = [(i, j, cm[i][j]) for i in range(len(x.vertices)) for j in range(len(y.vertices)) if cm[i][j]]
        pair_monos = [monomials(c) for _, _, c in pairs]
        lefts = left_x + left_y
        nx = len(x.vertices)
        keep = [g for g, r in enumerate(lefts) if r > 0]
        comps = {}
        for left in itertools.product(*[monomials(r) for r in lefts]):
            terms: Counter = Counter()
            for ns in itertools.product(*pair_monos):
                weight = 1
                mx = list(left[:nx])
                my = list(left[nx:])
                for (i, j, _), n in zip(pairs, ns):
                    weight *= _multinomial(n)
                    mx[i] = _add(mx[i], n)
                    my[j] = _add(my[j], n)
                a = x.components[tuple(mx)]
                b = y.components[tuple(my)]
                if b < a:
                    a, b = b, a
                terms[(a, b)] += weight
            comps[tuple(left[g] for g in keep)] = self.new_moment(terms)
        vertices = tuple(x.vertices[g] if g < nx else y.vertices[g - nx] for g in keep)
        return _Tensor(vertices, tuple(lefts[g] for g in keep), comps)


def _chain_order(graph: BasisGraph) -> list[int]:
    """Order in which the moment tensors of a connected graph are contracted.

    Start from the highest-rank tensor (lowest mu on ties); then add, at each step,
    the tensor that leaves the intermediate tensor with the fewest open indices
    (ties: higher mu first).
    """
    vs = graph.vertices
    n = len(vs)
    rest = list(range(n))
    first = min(rest, key=lambda i: (-vs[i][1], vs[i][0], i))
    order = [first]
    rest.remove(first)

    def open_rank(i):
        s = set(order) | {i}
        return sum(graph.multiplicity(a, b) for a in s for b in range(n) if b not in s)

    while rest:
        nxt = min(rest, key=lambda i: (open_rank(i), -vs[i][0], i))
        order.append(nxt)
        rest.remove(nxt)
    return order


# --------------------------------------------------------------------------------------
# the template
# --------------------------------------------------------------------------------------
@dataclass
class MtpTemplate(MtpTableCounts):
    """An untrained MTP: the basis (index tables) and the radial-basis settings."""

    level: int
    species_count: int
    radial_basis_size: int
    min_dist: float
    max_dist: float
    radial_basis_type: str
    radial_funcs_count: int
    alpha_index_basic: list[tuple[int, int, int, int]]
    alpha_index_times: list[tuple[int, int, int, int]]
    alpha_moments_count: int
    alpha_moment_mapping: list[int]
    potential_name: str = 'MTP1m'
    version: str = '1.1.0'
    #: level of each basis function (order of ``alpha_moment_mapping``)
    basis_levels: list[int] = field(default_factory=list)
    #: each basis function as the tuple of its connected factors (:class:`BasisGraph`)
    basis_functions: list[tuple] = field(default_factory=list)

    def to_potential(self):
        """The template as an :class:`~aiida_mscale.mtp.potential_file.MtpPotential`."""
        from .potential_file import MtpPotential

        return MtpPotential(
            version=self.version,
            potential_name=self.potential_name,
            species_count=self.species_count,
            potential_tag='',
            radial_basis_type=self.radial_basis_type,
            min_dist=self.min_dist,
            max_dist=self.max_dist,
            radial_basis_size=self.radial_basis_size,
            radial_funcs_count=self.radial_funcs_count,
            alpha_moments_count=self.alpha_moments_count,
            alpha_index_basic=self.alpha_index_basic,
            alpha_index_times=self.alpha_index_times,
            alpha_moment_mapping=self.alpha_moment_mapping,
        )

    def to_text(self) -> str:
        """The ``.mtp`` file text (MLIP's layout)."""
        return self.to_potential().to_text()

    def write(self, path) -> Path:
        path = Path(path)
        path.write_text(self.to_text(), encoding='utf-8')
        return path

    def __str__(self) -> str:
        return self.to_text()


#: The highest level generated: MLIP's published templates go to 28; the basis (and memory) grows steeply above.
MAX_LEVEL = 28


def build_template(
    level: int,
    species_count: int = 1,
    radial_basis_size: int = 8,
    min_dist: float = 2.0,
    max_dist: float = 5.0,
    radial_basis_type: str = 'RBChebyshev',
    max_tensors: int = MAX_TENSORS,
) -> MtpTemplate:
    """Build the :class:`MtpTemplate` of an MTP level (see module docstring)."""
    level = _check_int('level', level, 2, MAX_LEVEL)
    species_count = _check_int('species_count', species_count, 1, 118)
    radial_basis_size = _check_int('radial_basis_size', radial_basis_size, 2, 64)
    min_dist = float(min_dist)
    max_dist = float(max_dist)
    if not (math.isfinite(min_dist) and math.isfinite(max_dist)):
        raise ValueError(f'min_dist and max_dist must be finite, got {min_dist}, {max_dist}')
    if not 0.0 <= min_dist < max_dist:
        raise ValueError(f'need 0 <= min_dist < max_dist, got {min_dist}, {max_dist}')
    if not isinstance(radial_basis_type, str) or not radial_basis_type.strip():
        raise ValueError('radial_basis_type must be a non-empty string')

    graphs = basis_graphs(level, max_tensors)
    labels = sorted({v for g in graphs for v in g.vertices})
    builder = _Builder(labels)

    # connected basis functions
    scalars: list[tuple[int, int, int]] = []  # (level, n_tensors, moment index)
    descriptions: dict[int, tuple[BasisGraph, ...]] = {}
    for graph in graphs:
        if len(graph.vertices) == 1:
            mu, nu = graph.vertices[0]
            index = builder.basic_index[(mu, (0, 0, 0))]
        else:
            order = _chain_order(graph)
            tensor = builder.basic(*graph.vertices[order[0]], order[0])
            for v in order[1:]:
                tensor = builder.contract(tensor, builder.basic(*graph.vertices[v], v), graph)
            (index,) = tensor.components.values()
        scalars.append((graph.level, len(graph.vertices), index))
        descriptions[index] = (graph,)

    # products of connected ones, <= max_tensors tensors in all, level <= level
    basis: list[tuple[int, int]] = [(lev, idx) for lev, _, idx in scalars]

    def extend(start, total_level, total_tensors, index):
        for f in range(start, len(scalars)):
            lev, nt, idx = scalars[f]
            if total_level + lev > level or total_tensors + nt > max_tensors:
                continue
            product = builder.new_moment(Counter({tuple(sorted((index, idx))): 1}))
            basis.append((total_level + lev, product))
            descriptions[product] = descriptions[index] + descriptions[idx]
            extend(f, total_level + lev, total_tensors + nt, product)

    for f, (lev, nt, idx) in enumerate(scalars):
        extend(f, lev, nt, idx)

    basis.sort()
    return MtpTemplate(
        level=level,
        species_count=species_count,
        radial_basis_size=radial_basis_size,
        min_dist=min_dist,
        max_dist=max_dist,
        radial_basis_type=radial_basis_type.strip(),
        radial_funcs_count=max(mu for mu, _ in labels) + 1,
        alpha_index_basic=builder.alpha_index_basic,
        alpha_index_times=builder.alpha_index_times,
        alpha_moments_count=builder.n_moments,
        alpha_moment_mapping=[idx for _, idx in basis],
        basis_levels=[lev for lev, _ in basis],
        basis_functions=[descriptions[idx] for _, idx in basis],
    )


def generate_untrained_mtp(
    level: int,
    species_count: int = 1,
    radial_basis_size: int = 8,
    min_dist: float = 2.0,
    max_dist: float = 5.0,
    radial_basis_type: str = 'RBChebyshev',
) -> MtpTemplate:
    """Untrained MTP of a level, in MLIP's ``.mtp`` layout.

    Returns an :class:`MtpTemplate`; ``str(template)`` / ``template.to_text()`` is the
    file text and ``template.write(path)`` writes it.  Levels 2..28 are MLIP's range
    (even levels); any level in 2..28 is accepted, an odd level L giving the template of
    L - 1 (see module docstring).
    """
    return build_template(
        level,
        species_count=species_count,
        radial_basis_size=radial_basis_size,
        min_dist=min_dist,
        max_dist=max_dist,
        radial_basis_type=radial_basis_type,
    )


def _check_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum] (numpy integers accepted, bools and floats not)."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f'{name} must be an integer >= {minimum}, got {value!r}')
    if maximum is not None and value > maximum:
        raise ValueError(f'{name} must be at most {maximum}, got {value!r}')
    return int(value)
