/* compute mtp/grade (aiida-mscale): see compute_mtp_grade.h */

#include "compute_mtp_grade.h"

#include "atom.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "pair_mtp.h"
#include "update.h"

using namespace LAMMPS_NS;

ComputeMTPGrade::ComputeMTPGrade(LAMMPS *lmp, int narg, char **arg) :
    Compute(lmp, narg, arg), pair(nullptr), nmax(0), values(nullptr)
{
  if (narg != 3) error->all(FLERR, "Illegal compute mtp/grade command: compute ID group mtp/grade");
  peratom_flag = 1;
  size_peratom_cols = 0;
  scalar_flag = 1;
  extscalar = 0;
}

ComputeMTPGrade::~ComputeMTPGrade()
{
  memory->destroy(values);
}

void ComputeMTPGrade::init()
{
  pair = dynamic_cast<PairMTP *>(force->pair_match("mtp", 1, 0));
  if (!pair) error->all(FLERR, "compute mtp/grade needs pair_style mtp");
  if (!pair->grading_enabled())
    error->all(FLERR, "compute mtp/grade needs pair_style mtp with an active set (active_set FILE)");
}

void ComputeMTPGrade::refresh()
{
  if (pair->grade_step != update->ntimestep || pair->nlocal_grade != atom->nlocal ||
      !pair->grade)
    pair->compute_grades_now();
}

double ComputeMTPGrade::compute_scalar()
{
  invoked_scalar = update->ntimestep;
  refresh();
  scalar = pair->max_grade;
  return scalar;
}

void ComputeMTPGrade::compute_peratom()
{
  invoked_peratom = update->ntimestep;
  if (atom->nmax > nmax) {
    memory->destroy(values);
    nmax = atom->nmax;
    memory->create(values, nmax, "mtp/grade:values");
    vector_atom = values;
  }
  refresh();
  int nlocal = atom->nlocal;
  int *mask = atom->mask;
  for (int i = 0; i < nlocal; i++) values[i] = (mask[i] & groupbit) ? pair->grade[i] : 0.0;
}

double ComputeMTPGrade::memory_usage()
{
  return (double) nmax * sizeof(double);
}
