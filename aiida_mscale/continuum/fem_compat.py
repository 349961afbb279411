"""The one place that knows which dolfinx it runs on (0.5 as in Debian 12, or 0.7 ... 0.10).

Everything version dependent that the solver scripts need goes through here:

* function spaces: ``dolfinx.fem.FunctionSpace(mesh, ("Lagrange", 1))`` (0.5, 0.6) versus
  ``dolfinx.fem.functionspace`` (0.7+); mixed spaces from ``ufl.MixedElement`` (<= 0.6)
  versus ``basix.ufl.mixed_element`` (0.7+);
* the PETSc vector behind a Function: ``u.vector`` (<= 0.8) versus ``u.x.petsc_vec`` (0.9+);
* the nonlinear solve. ``dolfinx.nls.petsc.NewtonSolver`` + ``fem.petsc.NonlinearProblem`` were
  replaced by a SNES-based ``NonlinearProblem`` in 0.10, so the solvers do not use either: they call
  :func:`newton_solve` below, a plain Newton loop built only from ``fem.petsc.assemble_matrix`` /
  ``assemble_vector`` and a PETSc KSP (LU), which exist with the same positional signatures in
  0.5 ... 0.10. That also gives us what the library solvers do not: a bound check on every iterate
  (concentrations must stay in (0, 1)) and a step-size damping that keeps them there.

Tested here on Debian's dolfinx 0.5.2 (Python 3.11, numpy 1.24, petsc4py 3.18). The 0.7+ branches
follow the documented API and are not exercised in this repository's CI.
"""

import logging as _logging

import dolfinx
import dolfinx.fem
import dolfinx.fem.petsc
import dolfinx.mesh
import numpy as np
import ufl
from mpi4py import MPI
from petsc4py import PETSc

DOLFINX_VERSION = tuple(int(p) for p in dolfinx.__version__.split('.')[:2])
COMM = MPI.COMM_WORLD
ScalarType = PETSc.ScalarType

# the JIT build (cffi/setuptools) logs compiler command lines at INFO on the root logger: drop them
_logging.getLogger().addFilter(lambda record: record.levelno >= _logging.WARNING)


class NewtonDivergence(RuntimeError):
    """Newton did not converge (or left the admissible set) in the allowed iterations."""


def function_space(mesh, family='Lagrange', degree=1):
    """Scalar function space (Lagrange or DG) on ``mesh``."""
    if DOLFINX_VERSION >= (0, 7):
        return dolfinx.fem.functionspace(mesh, (family, degree))
    return dolfinx.fem.FunctionSpace(mesh, (family, degree))


def mixed_space(mesh, n=2, family='Lagrange', degree=1):
    """Mixed space of ``n`` equal scalar Lagrange components (e.g. concentration, potential)."""
    if DOLFINX_VERSION >= (0, 7):
        import basix.ufl

        el = basix.ufl.element(family, mesh.basix_cell(), degree)
        return dolfinx.fem.functionspace(mesh, basix.ufl.mixed_element([el] * n))
    el = ufl.FiniteElement(family, mesh.ufl_cell(), degree)
    return dolfinx.fem.FunctionSpace(mesh, ufl.MixedElement([el] * n))


def petsc_vec(u):
    """The PETSc vector that holds the degrees of freedom of Function ``u``."""
    if hasattr(u.x, 'petsc_vec'):
        return u.x.petsc_vec
    return u.vector


def interval_mesh(points):
    """1-D mesh whose vertices are the sorted array ``points`` (non-uniform spacing allowed)."""
    points = np.asarray(points, dtype=float)
    n = len(points) - 1
    mesh = dolfinx.mesh.create_interval(COMM, n, [0.0, 1.0])
    x = mesh.geometry.x
    # map the uniform [0, 1] vertices onto the requested ones (monotone piecewise-linear map)
    x[:, 0] = np.interp(x[:, 0], np.linspace(0.0, 1.0, n + 1), points)
    return mesh


def rectangle_mesh(lx, ly, nx, ny, diagonal='crossed'):
    """Triangle mesh of [0, lx] x [0, ly]."""
    diag = getattr(dolfinx.mesh.DiagonalType, diagonal)
    return dolfinx.mesh.create_rectangle(
        COMM,
        [np.array([0.0, 0.0]), np.array([lx, ly])],
        [nx, ny],
        cell_type=dolfinx.mesh.CellType.triangle,
        diagonal=diag,
    )


def constant(mesh, value):
    return dolfinx.fem.Constant(mesh, np.asarray(value, dtype=ScalarType))


def form(f):
    return dolfinx.fem.form(f)


def assemble_scalar(f):
    """Integral of a compiled (or UFL) scalar form, summed over MPI ranks."""
    if isinstance(f, ufl.Form):
        f = dolfinx.fem.form(f)
    return COMM.allreduce(dolfinx.fem.assemble_scalar(f), op=MPI.SUM)


def dirichlet_bc(V, value, marker):
    """Dirichlet condition u = value (float) on the boundary facets where ``marker(x)`` is True."""
    mesh = V.mesh
    fdim = mesh.topology.dim - 1
    facets = dolfinx.mesh.locate_entities_boundary(mesh, fdim, marker)
    dofs = dolfinx.fem.locate_dofs_topological(V, fdim, facets)
    return dolfinx.fem.dirichletbc(ScalarType(value), dofs, V)


_HAS_MUMPS = PETSc.Sys.hasExternalPackage('mumps')


def _lu_solver(A):
    """Direct solver: MUMPS when PETSc has it and the system is not tiny, else PETSc's own LU."""
    ksp = PETSc.KSP().create(COMM)
    ksp.setOperators(A)
    ksp.setType('preonly')
    pc = ksp.getPC()
    pc.setType('lu')
    if _HAS_MUMPS and A.getSize()[0] > 2000:
        pc.setFactorSolverType('mumps')
    return ksp


def solve_linear(a, L, u, bcs=()):
    """Assemble and solve the linear problem a(u, v) = L(v) with Dirichlet ``bcs`` into ``u`` (LU)."""
    a_f, L_f = dolfinx.fem.form(a), dolfinx.fem.form(L)
    bcs = list(bcs)
    A = dolfinx.fem.petsc.assemble_matrix(a_f, bcs)
    A.assemble()
    b = dolfinx.fem.petsc.assemble_vector(L_f)
    dolfinx.fem.petsc.apply_lifting(b, [a_f], [bcs])
    b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    dolfinx.fem.petsc.set_bc(b, bcs)
    ksp = _lu_solver(A)
    ksp.solve(b, petsc_vec(u))
    u.x.scatter_forward()
    ksp.destroy()
    A.destroy()
    b.destroy()
    return u


class NewtonSolver:
    """Newton's method for F(u; v) = 0, with optional Dirichlet conditions ``bcs``.

    ``F`` and ``J`` are UFL forms (J = dF/du); both are compiled once. ``admissible(u_array)``
    may return a factor in (0, 1] that scales the Newton step to keep the iterate admissible
    (1 = full step). Convergence: ||du||_inf <= atol + rtol ||u||_inf, or ||F||_inf <= ftol.
    """

    def __init__(
        self, F, J, u, rtol=1e-10, atol=1e-12, ftol=1e-13, max_it=25, admissible=None, bcs=(), line_search=False
    ):
        self.bcs = list(bcs)
        self.line_search = line_search
        self.F = dolfinx.fem.form(F)
        self.J = dolfinx.fem.form(J)
        self.u = u
        self.rtol, self.atol, self.ftol, self.max_it = rtol, atol, ftol, max_it
        self.admissible = admissible
        self.du = dolfinx.fem.Function(u.function_space)
        self.total_iterations = 0
        self.linear_solve_time = 0.0

    def solve(self):
        import time

        u, du = self.u, self.du
        for it in range(1, self.max_it + 1):
            b = self._residual()
            fnorm = b.norm(PETSc.NormType.NORM_INFINITY)
            if not np.isfinite(fnorm):
                b.destroy()
                raise NewtonDivergence('residual is not finite')
            A = dolfinx.fem.petsc.assemble_matrix(self.J, self.bcs)
            A.assemble()
            t0 = time.perf_counter()
            ksp = _lu_solver(A)
            ksp.solve(b, petsc_vec(du))
            self.linear_solve_time += time.perf_counter() - t0
            du.x.scatter_forward()
            ksp.destroy()
            A.destroy()
            b.destroy()
            step = du.x.array
            if not np.all(np.isfinite(step)):
                raise NewtonDivergence('Newton update is not finite')
            lam = 1.0 if self.admissible is None else self.admissible(u.x.array, -step)
            if lam <= 0.0:
                raise NewtonDivergence('no admissible Newton step')
            u0 = u.x.array.copy()
            f0 = np.linalg.norm(b.array) if self.line_search else 0.0
            u.x.array[:] = u0 - lam * step
            u.x.scatter_forward()
            if self.line_search:  # backtracking on the residual 2-norm (Armijo)
                for _ in range(8):
                    r = self._residual()
                    f1 = np.linalg.norm(r.array)
                    r.destroy()
                    if np.isfinite(f1) and f1 <= (1 - 1e-4 * lam) * f0:
                        break
                    lam *= 0.5
                    u.x.array[:] = u0 - lam * step
                    u.x.scatter_forward()
            self.total_iterations += 1
            dnorm = lam * np.max(np.abs(step))
            if lam == 1.0 and (dnorm <= self.atol + self.rtol * np.max(np.abs(u.x.array)) or fnorm <= self.ftol):
                return it
        raise NewtonDivergence(f'Newton did not converge in {self.max_it} iterations')

    def _residual(self):
        """Assembled residual; Dirichlet rows hold (u - prescribed value)."""
        b = dolfinx.fem.petsc.assemble_vector(self.F)
        if self.bcs:
            dolfinx.fem.petsc.apply_lifting(b, [self.J], [self.bcs], [petsc_vec(self.u)], -1.0)
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        if self.bcs:
            dolfinx.fem.petsc.set_bc(b, self.bcs, petsc_vec(self.u), -1.0)
        return b


def write_xdmf(path, mesh, functions):
    """Write ``functions`` (list of (name, Function)) on ``mesh`` to one XDMF file (+ .h5)."""
    from dolfinx.io import XDMFFile

    with XDMFFile(COMM, str(path), 'w') as f:
        f.write_mesh(mesh)
        for name, fun in functions:
            fun.name = name
            f.write_function(fun, 0.0)


def geometry_cells(mesh):
    """(n_cells, n_nodes_per_cell) indices into ``mesh.geometry.x`` (local cells)."""
    dm = mesh.geometry.dofmap
    n = mesh.topology.index_map(mesh.topology.dim).size_local
    if hasattr(dm, 'array'):  # AdjacencyList (<= 0.7)
        arr = np.asarray(dm.array)
        return arr.reshape(-1, len(dm.links(0)))[:n]
    arr = np.asarray(dm)
    return arr.reshape(arr.shape[0], -1)[:n]


def cell_dofs(V):
    """(n_cells, dofs_per_cell) dof indices of space V (local cells)."""
    lst = V.dofmap.list
    n = V.mesh.topology.index_map(V.mesh.topology.dim).size_local
    if hasattr(lst, 'array'):
        arr = np.asarray(lst.array)
        return arr.reshape(-1, len(lst.links(0)))[:n]
    arr = np.asarray(lst)
    return arr.reshape(arr.shape[0], -1)[:n]


def sub_dofs(W, i):
    """Indices (into the mixed Function's array) of component ``i`` of mixed space ``W``."""
    _, dofs = W.sub(i).collapse()
    return np.asarray(dofs)


def disk_mesh(n, diagonal='crossed'):
    """Unit disk: an n x n triangle mesh of [-1, 1]^2 mapped onto the disk (elliptical grid map
    x' = x sqrt(1 - y^2/2), y' = y sqrt(1 - x^2/2), which sends the square's boundary onto the circle)."""
    mesh = rectangle_mesh(2.0, 2.0, n, n, diagonal)
    X = mesh.geometry.x
    x, y = X[:, 0] - 1.0, X[:, 1] - 1.0
    X[:, 0] = x * np.sqrt(1.0 - 0.5 * y * y)
    X[:, 1] = y * np.sqrt(1.0 - 0.5 * x * x)
    return mesh


def vertex_bc(W_sub, value, marker):
    """Dirichlet condition value on the P1 (sub)space ``W_sub`` at all mesh vertices where marker(x)."""
    mesh = W_sub.mesh
    verts = dolfinx.mesh.locate_entities(mesh, 0, marker)
    dofs = dolfinx.fem.locate_dofs_topological(W_sub, 0, verts)
    return dolfinx.fem.dirichletbc(ScalarType(value), dofs, W_sub)


def box_mesh(lx, ly, lz, nx, ny, nz):
    """Tetrahedral mesh of [0, lx] x [0, ly] x [0, lz]."""
    return dolfinx.mesh.create_box(
        COMM,
        [np.array([0.0, 0.0, 0.0]), np.array([lx, ly, lz])],
        [nx, ny, nz],
        cell_type=dolfinx.mesh.CellType.tetrahedron,
    )


def constrained_prolongation(V, weights):
    """PETSc matrix P (n_dofs x n_reduced) from per-dof constraint rows (periodic images, hanging nodes).

    ``weights``: one list per dof of V (local numbering) of (reduced index, weight) pairs; u_full = P u_reduced, and
    the constrained problem is P^T A P u_r = P^T b (the master/slave elimination of dolfinx_mpc)."""
    n_full = len(weights)
    n_red = 1 + max(j for row in weights for j, _ in row)
    indptr = np.zeros(n_full + 1, dtype=PETSc.IntType)
    indptr[1:] = np.cumsum([len(row) for row in weights])
    indices = np.array([j for row in weights for j, _ in row], dtype=PETSc.IntType)
    values = np.array([w for row in weights for _, w in row], dtype=ScalarType)
    P = PETSc.Mat().createAIJ([n_full, n_red], nnz=np.diff(indptr), comm=COMM)
    P.setValuesCSR(indptr, indices, values)
    P.assemble()
    return P


def solve_constrained(a, Ls, us, P, fixed=None):
    """Solve a(u, v) = L(v) on the constrained space u = P u_r for every L in ``Ls`` (into ``us``).

    ``fixed``: None (pure Neumann/periodic: reduced dof 0 pinned to 0, right-hand sides must be compatible), or
    one (indices, values) pair of reduced dofs with prescribed values per right-hand side (Dirichlet)."""
    a_f = dolfinx.fem.form(a)
    A = dolfinx.fem.petsc.assemble_matrix(a_f)
    A.assemble()
    Ar = A.ptap(P)
    ur = Ar.createVecRight()
    br = Ar.createVecRight()
    ksp = None
    if fixed is None:
        Ar.zeroRowsColumns([0], 1.0)
        ksp = _lu_solver(Ar)
    for k, (L, u) in enumerate(zip(Ls, us)):
        b = dolfinx.fem.petsc.assemble_vector(dolfinx.fem.form(L))
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        P.multTranspose(b, br)
        if fixed is None:
            br.setValue(0, 0.0)
            br.assemblyBegin()
            br.assemblyEnd()
            ksp.solve(br, ur)
        else:
            rows, values = fixed[k]
            Ak = Ar.copy()
            xv = Ar.createVecRight()
            xv.setValues(np.asarray(rows, dtype=PETSc.IntType), np.asarray(values, dtype=ScalarType))
            xv.assemblyBegin()
            xv.assemblyEnd()
            Ak.zeroRowsColumns(np.asarray(rows, dtype=PETSc.IntType), 1.0, xv, br)
            kk = _lu_solver(Ak)
            kk.solve(br, ur)
            for obj in (kk, Ak, xv):
                obj.destroy()
        P.mult(ur, petsc_vec(u))
        u.x.scatter_forward()
        b.destroy()
    for obj in (A, Ar, ur, br) + ((ksp,) if ksp is not None else ()):
        obj.destroy()
    return us


def triangle_mesh_from_cells(cells, x):
    """Triangle mesh from vertex coordinates ``x`` (n, 2) and cells (m, 3). Serial input (all cells on rank 0)."""
    cells = np.asarray(cells, dtype=np.int64)
    x = np.asarray(x, dtype=np.float64)
    if DOLFINX_VERSION >= (0, 7):
        import basix.ufl

        element = basix.ufl.element('Lagrange', 'triangle', 1, shape=(2,))
        return dolfinx.mesh.create_mesh(COMM, cells, x, ufl.Mesh(element))
    element = ufl.VectorElement('Lagrange', ufl.triangle, 1)
    return dolfinx.mesh.create_mesh(COMM, cells, x, ufl.Mesh(element))
