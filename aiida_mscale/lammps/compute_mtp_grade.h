/* -*- c++ -*- ----------------------------------------------------------------
   compute ID group mtp/grade   (aiida-mscale, plugin with pair_style mtp)

   Per-atom vector: the MaxVol extrapolation grade gamma_i of pair_style mtp (which
   must have an active set).  If the pair style graded this very step (steps that
   are multiples of its `every`), those grades are used; otherwise they are
   computed now for the current positions.  Atoms outside the group get 0.
   Global scalar: the maximum grade over all atoms (of the same evaluation).
   Use with dump custom (c_ID) and compute reduce max c_ID.
------------------------------------------------------------------------- */

#ifdef COMPUTE_CLASS
// clang-format off
ComputeStyle(mtp/grade,ComputeMTPGrade);
// clang-format on
#else

#ifndef LMP_COMPUTE_MTP_GRADE_H
#define LMP_COMPUTE_MTP_GRADE_H

#include "compute.h"

namespace LAMMPS_NS {

class ComputeMTPGrade : public Compute {
 public:
  ComputeMTPGrade(class LAMMPS *, int, char **);
  ~ComputeMTPGrade() override;
  void init() override;
  double compute_scalar() override;
  void compute_peratom() override;
  double memory_usage() override;

 private:
  class PairMTP *pair;
  int nmax;
  double *values;
  void refresh();
};

}    // namespace LAMMPS_NS

#endif
#endif
