/* ----------------------------------------------------------------------
   pair_style mtp (aiida-mscale).  See pair_mtp.h for the science, the syntax
   and the active-set file format.
------------------------------------------------------------------------- */

#include "pair_mtp.h"

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "timer.h"
#include "update.h"
#include "utils.h"

#include <algorithm>
#include <array>
#include <set>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

using namespace LAMMPS_NS;

namespace {

std::string trim(const std::string &s)
{
  const char *ws = " \t\r\n";
  auto a = s.find_first_not_of(ws);
  if (a == std::string::npos) return "";
  auto b = s.find_last_not_of(ws);
  return s.substr(a, b - a + 1);
}

// all numbers in a text like "{{0, 1}, {2, 3}}" or "{1.5, -2e-3}"
bool parse_numbers(const std::string &text, std::vector<double> &out)
{
  out.clear();
  std::string t = text;
  for (auto &c : t)
    if (c == '{' || c == '}' || c == ',') c = ' ';
  std::istringstream is(t);
  std::string tok;
  while (is >> tok) {
    char *end = nullptr;
    double v = std::strtod(tok.c_str(), &end);
    if (end == tok.c_str() || *end != '\0') return false;
    out.push_back(v);
  }
  return true;
}

std::string read_whole_file(LAMMPS *lmp, const char *path, bool &ok)
{
  std::string text;
  ok = true;
  if (lmp->comm->me == 0) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      ok = false;
    } else {
      std::ostringstream ss;
      ss << in.rdbuf();
      text = ss.str();
    }
  }
  int okint = ok ? 1 : 0;
  MPI_Bcast(&okint, 1, MPI_INT, 0, lmp->world);
  ok = okint != 0;
  if (!ok) return text;
  long n = (long) text.size();
  MPI_Bcast(&n, 1, MPI_LONG, 0, lmp->world);
  text.resize(n);
  if (n > 0) MPI_Bcast(&text[0], (int) n, MPI_CHAR, 0, lmp->world);
  return text;
}

}    // namespace

/* ---------------------------------------------------------------------- */

PairMTP::PairMTP(LAMMPS *lmp) : Pair(lmp)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  centroidstressflag = CENTROID_NOTAVAIL;
  no_virial_fdotr_compute = 1;

  grade = nullptr;
  nlocal_grade = 0;
  grade_step = -1;
  max_grade = 0.0;
  type2species = nullptr;
  potential_read = false;

  nspecies = rbsize = rfcount = nbasic = nmoments = nscalar = maxpow = 0;
  min_dist = max_dist = 0.0;
  scaling = 1.0;

  have_active_set = 0;
  grade_every = 1;
  save_threshold = -1.0;
  break_threshold = -1.0;
  break_halt = 0;
  layout = 0;
  asize = 0;
  nmax_grade = 0;
  nneigh_max = 0;
}

PairMTP::~PairMTP()
{
  memory->destroy(grade);
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    delete[] type2species;
  }
}

/* ---------------------------------------------------------------------- */

void PairMTP::allocate()
{
  allocated = 1;
  int n = atom->ntypes;
  memory->create(setflag, n + 1, n + 1, "pair:setflag");
  memory->create(cutsq, n + 1, n + 1, "pair:cutsq");
  for (int i = 1; i <= n; i++)
    for (int j = 1; j <= n; j++) setflag[i][j] = 0;
  type2species = new int[n + 1];
  for (int i = 0; i <= n; i++) type2species[i] = -1;
}

/* ---------------------------------------------------------------------- */

void PairMTP::settings(int narg, char **arg)
{
  species_names.clear();
  have_active_set = 0;
  active_set_file.clear();
  save_file.clear();
  grade_every = 1;
  save_threshold = -1.0;
  break_threshold = -1.0;
  break_halt = 0;

  int iarg = 0;
  while (iarg < narg) {
    std::string key = arg[iarg];
    if (key == "species") {
      iarg++;
      static const char *keys[] = {"active_set", "every", "save", "break", "break_action"};
      while (iarg < narg) {
        bool stop = false;
        for (auto k : keys)
          if (strcmp(arg[iarg], k) == 0) stop = true;
        if (stop) break;
        species_names.emplace_back(arg[iarg]);
        iarg++;
      }
      if (species_names.empty()) error->all(FLERR, "pair_style mtp: 'species' needs names");
    } else if (key == "active_set") {
      if (iarg + 2 > narg) error->all(FLERR, "pair_style mtp: 'active_set' needs a file");
      active_set_file = arg[iarg + 1];
      iarg += 2;
    } else if (key == "every") {
      if (iarg + 2 > narg) error->all(FLERR, "pair_style mtp: 'every' needs a value");
      grade_every = utils::inumeric(FLERR, arg[iarg + 1], false, lmp);
      if (grade_every < 1) error->all(FLERR, "pair_style mtp: 'every' must be >= 1");
      iarg += 2;
    } else if (key == "save") {
      if (iarg + 3 > narg) error->all(FLERR, "pair_style mtp: 'save' needs a threshold and a file");
      save_threshold = utils::numeric(FLERR, arg[iarg + 1], false, lmp);
      save_file = arg[iarg + 2];
      iarg += 3;
    } else if (key == "break") {
      if (iarg + 2 > narg) error->all(FLERR, "pair_style mtp: 'break' needs a threshold");
      break_threshold = utils::numeric(FLERR, arg[iarg + 1], false, lmp);
      iarg += 2;
    } else if (key == "break_action") {
      if (iarg + 2 > narg) error->all(FLERR, "pair_style mtp: 'break_action' needs error or halt");
      std::string v = arg[iarg + 1];
      if (v == "error")
        break_halt = 0;
      else if (v == "halt")
        break_halt = 1;
      else
        error->all(FLERR, "pair_style mtp: break_action must be error or halt, not {}", v);
      iarg += 2;
    } else {
      error->all(FLERR, "pair_style mtp: unknown keyword {}", key);
    }
  }
  if ((!save_file.empty() || break_threshold >= 0.0) && active_set_file.empty())
    error->all(FLERR,
               "pair_style mtp: extrapolation control (save/break) needs an active set: "
               "add 'active_set FILE'");
  if (!active_set_file.empty()) have_active_set = 1;
}

/* ---------------------------------------------------------------------- */

void PairMTP::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  if (narg < 3) error->all(FLERR, "pair_coeff * * FILE.mtp [species map]: too few arguments");
  if (strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "pair_style mtp: pair_coeff must start with '* *'");

  read_potential(arg[2]);

  int ntypes = atom->ntypes;
  int nmap = narg - 3;
  if (nmap != 0 && nmap != ntypes)
    error->all(FLERR,
               "pair_coeff * * {}: give one species per atom type ({} types), or none, "
               "got {}",
               arg[2], ntypes, nmap);
  for (int t = 1; t <= ntypes; t++) {
    int s;
    if (nmap == 0) {
      s = t - 1;
      if (s >= nspecies)
        error->all(FLERR,
                   "pair_style mtp: atom type {} has no species in {} ({} species); "
                   "give a type -> species map in pair_coeff",
                   t, arg[2], nspecies);
    } else {
      std::string tok = arg[2 + t];
      if (tok == "NULL") {
        s = -1;
      } else if (utils::is_integer(tok)) {
        s = std::atoi(tok.c_str());
        if (s < 0 || s >= nspecies)
          error->all(FLERR, "pair_style mtp: species index {} for type {} is out of range 0..{}",
                     s, t, nspecies - 1);
      } else {
        auto it = std::find(species_names.begin(), species_names.end(), tok);
        if (it == species_names.end())
          error->all(FLERR,
                     "pair_style mtp: element {} of atom type {} is not a species of the "
                     "potential (pair_style mtp species ...: {})",
                     tok, t, species_names.empty() ? "not given" : utils::join_words(species_names, " "));
        s = (int) (it - species_names.begin());
        if (s >= nspecies)
          error->all(FLERR, "pair_style mtp: element {} is species {}, but {} has {} species", tok,
                     s, arg[2], nspecies);
      }
    }
    type2species[t] = s;
  }
  if (!species_names.empty() && (int) species_names.size() != nspecies)
    error->all(FLERR, "pair_style mtp: {} species names given, but {} has species_count = {}",
               species_names.size(), arg[2], nspecies);

  int count = 0;
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++)
      if (type2species[i] >= 0 && type2species[j] >= 0) {
        setflag[i][j] = 1;
        count++;
      }
  if (count == 0) error->all(FLERR, "pair_style mtp: no atom type is mapped to a species");

  if (have_active_set) read_active_set(active_set_file.c_str());
}

/* ---------------------------------------------------------------------- */

void PairMTP::read_potential(const char *path)
{
  bool ok;
  std::string text = read_whole_file(lmp, path, ok);
  if (!ok) error->all(FLERR, "pair_style mtp: cannot open potential file {}", path);

  std::map<std::string, std::string> kv;
  std::map<std::string, int> where;
  std::vector<std::pair<int, std::string>> radial_lines;
  bool in_radial = false, header = false;
  std::istringstream is(text);
  std::string raw;
  int lineno = 0;
  while (std::getline(is, raw)) {
    lineno++;
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    if (!header) {
      if (line != "MTP")
        error->all(FLERR, "{}: line {}: expected the 'MTP' header, got '{}'", path, lineno, line);
      header = true;
      continue;
    }
    if (line == "radial_coeffs") {
      in_radial = true;
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      if (in_radial) {
        radial_lines.emplace_back(lineno, line);
        continue;
      }
      error->all(FLERR, "{}: line {}: expected 'key = value', got '{}'", path, lineno, line);
    }
    in_radial = false;
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    if (key == "min" || key == "min_val") key = "min_dist";
    if (key == "max" || key == "max_val") key = "max_dist";
    if (key == "size" || key == "basis_size") key = "radial_basis_size";
    if (key == "magnetic_basis_type" || key == "min_mag" || key == "max_mag")
      error->all(FLERR, "{}: line {}: magnetic MTPs are not supported", path, lineno);
    if (kv.count(key))
      error->all(FLERR, "{}: line {}: {} given twice (first on line {})", path, lineno, key,
                 where[key]);
    kv[key] = value;
    where[key] = lineno;
  }
  if (!header) error->all(FLERR, "{}: empty file or no 'MTP' header", path);

  static const char *required[] = {"species_count", "min_dist", "max_dist", "radial_basis_size",
                                   "radial_funcs_count", "alpha_moments_count",
                                   "alpha_index_basic", "alpha_index_times",
                                   "alpha_moment_mapping", "species_coeffs", "moment_coeffs"};
  for (auto k : required)
    if (!kv.count(k))
      error->all(FLERR, "{}: missing '{}'{}", path, k,
                 (std::string(k) == "moment_coeffs" || std::string(k) == "species_coeffs")
                     ? " (an untrained template cannot be used in pair_style mtp)"
                     : "");
  if (kv.count("radial_basis_type") && kv["radial_basis_type"] != "RBChebyshev")
    error->all(FLERR, "{}: radial_basis_type {} is not supported (only RBChebyshev)", path,
               kv["radial_basis_type"]);

  auto get_int = [&](const char *k) -> int {
    const std::string &v = kv[k];
    if (!utils::is_integer(v)) error->all(FLERR, "{}: line {}: {} must be an integer, got '{}'", path, where[k], k, v);
    return std::atoi(v.c_str());
  };
  auto get_double = [&](const char *k) -> double {
    const std::string &v = kv[k];
    if (!utils::is_double(v) && !utils::is_integer(v))
      error->all(FLERR, "{}: line {}: {} must be a number, got '{}'", path, where[k], k, v);
    return std::atof(v.c_str());
  };
  auto get_vec = [&](const char *k, std::vector<double> &out) {
    if (!parse_numbers(kv[k], out))
      error->all(FLERR, "{}: line {}: {}: could not parse the numbers", path, where[k], k);
  };

  nspecies = get_int("species_count");
  min_dist = get_double("min_dist");
  max_dist = get_double("max_dist");
  rbsize = get_int("radial_basis_size");
  rfcount = get_int("radial_funcs_count");
  nmoments = get_int("alpha_moments_count");
  scaling = kv.count("scaling") ? get_double("scaling") : 1.0;
  if (nspecies < 1) error->all(FLERR, "{}: species_count must be >= 1", path);
  if (rbsize < 1) error->all(FLERR, "{}: radial_basis_size must be >= 1", path);
  if (rfcount < 1) error->all(FLERR, "{}: radial_funcs_count must be >= 1", path);
  if (!(max_dist > min_dist) || min_dist < 0.0)
    error->all(FLERR, "{}: need 0 <= min_dist < max_dist, got {} {}", path, min_dist, max_dist);

  std::vector<double> v;
  get_vec("alpha_index_basic", v);
  if (v.size() % 4) error->all(FLERR, "{}: alpha_index_basic rows must have 4 entries", path);
  nbasic = (int) v.size() / 4;
  basic.assign(v.begin(), v.end());
  if (kv.count("alpha_index_basic_count") && get_int("alpha_index_basic_count") != nbasic)
    error->all(FLERR, "{}: alpha_index_basic_count = {} but {} rows given", path,
               get_int("alpha_index_basic_count"), nbasic);
  maxpow = 0;
  for (int a = 0; a < nbasic; a++) {
    int mu = basic[4 * a];
    if (mu < 0 || mu >= rfcount)
      error->all(FLERR, "{}: alpha_index_basic row {}: mu = {} not in 0..{}", path, a, mu,
                 rfcount - 1);
    for (int c = 1; c < 4; c++) {
      if (basic[4 * a + c] < 0) error->all(FLERR, "{}: alpha_index_basic row {}: negative power", path, a);
      maxpow = std::max(maxpow, basic[4 * a + c]);
    }
  }

  get_vec("alpha_index_times", v);
  if (v.size() % 4) error->all(FLERR, "{}: alpha_index_times rows must have 4 entries", path);
  times.assign(v.begin(), v.end());
  int ntimes = (int) times.size() / 4;
  if (kv.count("alpha_index_times_count") && get_int("alpha_index_times_count") != ntimes)
    error->all(FLERR, "{}: alpha_index_times_count = {} but {} rows given", path,
               get_int("alpha_index_times_count"), ntimes);
  for (int r = 0; r < ntimes; r++) {
    int i = times[4 * r], j = times[4 * r + 1], k = times[4 * r + 3];
    if (i < 0 || j < 0 || k < 0 || i >= nmoments || j >= nmoments || k >= nmoments)
      error->all(FLERR, "{}: alpha_index_times row {} indexes outside 0..alpha_moments_count-1",
                 path, r);
    if (k < nbasic)
      error->all(FLERR, "{}: alpha_index_times row {} writes a basic moment", path, r);
  }
  if (nbasic > nmoments)
    error->all(FLERR, "{}: alpha_moments_count < alpha_index_basic_count", path);

  get_vec("alpha_moment_mapping", v);
  mapping.assign(v.begin(), v.end());
  nscalar = (int) mapping.size();
  if (kv.count("alpha_scalar_moments") && get_int("alpha_scalar_moments") != nscalar)
    error->all(FLERR, "{}: alpha_scalar_moments = {} but alpha_moment_mapping has {} entries",
               path, get_int("alpha_scalar_moments"), nscalar);
  for (int m : mapping)
    if (m < 0 || m >= nmoments)
      error->all(FLERR, "{}: alpha_moment_mapping entry {} out of range", path, m);

  get_vec("species_coeffs", species_coeffs);
  if ((int) species_coeffs.size() != nspecies)
    error->all(FLERR, "{}: species_coeffs has {} entries, species_count is {}", path,
               species_coeffs.size(), nspecies);
  get_vec("moment_coeffs", moment_coeffs);
  if ((int) moment_coeffs.size() != nscalar)
    error->all(FLERR, "{}: moment_coeffs has {} entries, alpha_scalar_moments is {}", path,
               moment_coeffs.size(), nscalar);

  // radial coefficients: blocks "a-b" followed by radial_funcs_count rows of size Q
  radial_coeffs.assign((size_t) nspecies * nspecies * rfcount * rbsize, 0.0);
  std::vector<int> seen(nspecies * nspecies, 0);
  int cur = -1, row = 0;
  for (auto &pl : radial_lines) {
    const std::string &line = pl.second;
    if (line[0] != '{') {
      auto dash = line.find('-');
      if (dash == std::string::npos || !utils::is_integer(trim(line.substr(0, dash))) ||
          !utils::is_integer(trim(line.substr(dash + 1))))
        error->all(FLERR, "{}: line {}: expected 'a-b' in radial_coeffs, got '{}'", path, pl.first,
                   line);
      int a = std::atoi(line.substr(0, dash).c_str());
      int b = std::atoi(line.substr(dash + 1).c_str());
      if (a < 0 || b < 0 || a >= nspecies || b >= nspecies)
        error->all(FLERR, "{}: line {}: species pair {} out of range", path, pl.first, line);
      if (cur >= 0 && row != rfcount)
        error->all(FLERR, "{}: radial_coeffs block before line {} has {} rows, expected {}", path,
                   pl.first, row, rfcount);
      cur = a * nspecies + b;
      if (seen[cur]) error->all(FLERR, "{}: line {}: radial_coeffs {} given twice", path, pl.first, line);
      seen[cur] = 1;
      row = 0;
    } else {
      if (cur < 0) error->all(FLERR, "{}: line {}: radial_coeffs row before 'a-b'", path, pl.first);
      if (row >= rfcount)
        error->all(FLERR, "{}: line {}: too many radial_coeffs rows (radial_funcs_count = {})",
                   path, pl.first, rfcount);
      if (!parse_numbers(line, v) || (int) v.size() != rbsize)
        error->all(FLERR, "{}: line {}: radial_coeffs row must have {} numbers", path, pl.first,
                   rbsize);
      std::copy(v.begin(), v.end(), radial_coeffs.begin() + ((size_t) cur * rfcount + row) * rbsize);
      row++;
    }
  }
  if (cur >= 0 && row != rfcount)
    error->all(FLERR, "{}: last radial_coeffs block has {} rows, expected {}", path, row, rfcount);
  for (int p = 0; p < nspecies * nspecies; p++)
    if (!seen[p])
      error->all(FLERR, "{}: radial_coeffs block {}-{} missing{}", path, p / nspecies,
                 p % nspecies, radial_lines.empty() ? " (untrained template?)" : "");

  mom.assign(nmoments, 0.0);
  dmom.assign(nmoments, 0.0);
  build_monomials();
  build_times();
  potential_read = true;
  if (comm->me == 0)
    utils::logmesg(lmp,
                   "pair_style mtp: {} species, {} basis functions, {} moments, "
                   "radial basis {}x{}, cutoff {}\n",
                   nspecies, nscalar, nmoments, rfcount, rbsize, max_dist);
}

/* ---------------------------------------------------------------------- */

void PairMTP::read_active_set(const char *path)
{
  bool ok;
  std::string text = read_whole_file(lmp, path, ok);
  if (!ok) error->all(FLERR, "pair_style mtp: cannot open active-set file {}", path);
  std::istringstream is(text);
  std::string raw, tok;
  std::vector<std::string> words;
  bool in_matrix = false;
  std::vector<double> values;
  std::map<std::string, std::string> kv;
  int lineno = 0;
  bool header = false;
  while (std::getline(is, raw)) {
    lineno++;
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    if (!header) {
      if (line.rfind("MTP_ACTIVE_SET", 0) != 0)
        error->all(FLERR, "{}: line {}: expected 'MTP_ACTIVE_SET 1' header", path, lineno);
      header = true;
      continue;
    }
    if (in_matrix) {
      std::istringstream ls(line);
      while (ls >> tok) {
        char *end = nullptr;
        double x = std::strtod(tok.c_str(), &end);
        if (end == tok.c_str() || *end) error->all(FLERR, "{}: line {}: bad number '{}'", path, lineno, tok);
        values.push_back(x);
      }
      continue;
    }
    if (line == "inverse") {
      in_matrix = true;
      continue;
    }
    std::istringstream ls(line);
    std::string key, value;
    ls >> key >> value;
    kv[key] = value;
  }
  if (!header) error->all(FLERR, "{}: empty active-set file", path);
  auto need = [&](const char *k) -> std::string {
    if (!kv.count(k)) error->all(FLERR, "{}: active-set file lacks '{}'", path, k);
    return kv[k];
  };
  if (need("mode") != "neighborhood" && kv["mode"] != "neighbourhood")
    error->all(FLERR, "{}: only 'mode neighborhood' active sets are supported", path);
  std::string lay = need("layout");
  if (lay == "moment")
    layout = 0;
  else if (lay == "moment+species")
    layout = 1;
  else if (lay == "full")
    layout = 2;
  else
    error->all(FLERR, "{}: layout must be moment, moment+species or full, not {}", path, lay);
  int sc = std::atoi(need("species_count").c_str());
  int asm_ = std::atoi(need("alpha_scalar_moments").c_str());
  if (sc != nspecies || asm_ != nscalar)
    error->all(FLERR,
               "{}: active set is for {} species and {} basis functions, the potential has {} "
               "and {}",
               path, sc, asm_, nspecies, nscalar);
  int expected = nscalar;
  if (layout >= 1) expected += nspecies;
  if (layout == 2) {
    if (kv.count("radial_funcs_count") && std::atoi(kv["radial_funcs_count"].c_str()) != rfcount)
      error->all(FLERR, "{}: radial_funcs_count differs from the potential's", path);
    if (kv.count("radial_basis_size") && std::atoi(kv["radial_basis_size"].c_str()) != rbsize)
      error->all(FLERR, "{}: radial_basis_size differs from the potential's", path);
    expected += nspecies * nspecies * rfcount * rbsize;
  }
  asize = std::atoi(need("size").c_str());
  if (asize != expected)
    error->all(FLERR, "{}: size {} does not match layout {} of the potential ({})", path, asize,
               lay, expected);
  if ((long) values.size() != (long) asize * asize)
    error->all(FLERR, "{}: the inverse matrix has {} numbers, expected {}x{}", path, values.size(),
               asize, asize);
  ainv.swap(values);
  brow.assign(asize, 0.0);
  crow.assign(asize, 0.0);
  dvdc.assign((size_t) nspecies * rfcount * rbsize, 0.0);
  if (comm->me == 0)
    utils::logmesg(lmp, "pair_style mtp: active set {} ({} x {}, layout {}), grading every {} steps\n",
                   path, asize, asize, lay, grade_every);
}

/* ---------------------------------------------------------------------- */

void PairMTP::init_style()
{
  if (!potential_read) error->all(FLERR, "pair_style mtp: no potential (pair_coeff * * FILE.mtp)");
  if (force->newton_pair == 0) error->all(FLERR, "pair_style mtp requires newton pair on");
  if (atom->tag_enable == 0) error->all(FLERR, "pair_style mtp requires atom IDs");
  neighbor->add_request(this, NeighConst::REQ_FULL);
}

double PairMTP::init_one(int i, int j)
{
  if (setflag[i][j] == 0) error->all(FLERR, "All pair coeffs are not set");
  return max_dist;
}

/* ----------------------------------------------------------------------
   monomial table of the basic moments (closed under lowering a power)
------------------------------------------------------------------------- */

void PairMTP::build_monomials()
{
  std::map<std::array<int, 3>, int> index;
  std::vector<std::array<int, 3>> list;
  std::vector<std::array<int, 3>> work;
  for (int a = 0; a < nbasic; a++) work.push_back({basic[4 * a + 1], basic[4 * a + 2], basic[4 * a + 3]});
  work.push_back({0, 0, 0});
  std::set<std::array<int, 3>> all;
  while (!work.empty()) {
    auto m = work.back();
    work.pop_back();
    if (!all.insert(m).second) continue;
    for (int c = 0; c < 3; c++)
      if (m[c] > 0) {
        auto d = m;
        d[c]--;
        work.push_back(d);
      }
  }
  // basic monomials first (so W and V are indexed 0..nmono_basic-1), each group by degree
  std::set<std::array<int, 3>> basic_set;
  for (int a = 0; a < nbasic; a++) basic_set.insert({basic[4 * a + 1], basic[4 * a + 2], basic[4 * a + 3]});
  auto degree_less = [](const std::array<int, 3> &x, const std::array<int, 3> &y) {
    int dx = x[0] + x[1] + x[2], dy = y[0] + y[1] + y[2];
    if (dx != dy) return dx < dy;
    return x > y;
  };
  std::vector<std::array<int, 3>> first(basic_set.begin(), basic_set.end()), rest;
  for (auto &m : all)
    if (!basic_set.count(m)) rest.push_back(m);
  std::sort(first.begin(), first.end(), degree_less);
  std::sort(rest.begin(), rest.end(), degree_less);
  list = first;
  list.insert(list.end(), rest.begin(), rest.end());
  nmono_basic = (int) first.size();
  nmono = (int) list.size();
  for (int m = 0; m < nmono; m++) index[list[m]] = m;
  mono_pow.assign(3 * nmono, 0);
  mono_dec.assign(3 * nmono, -1);
  mono_parent.assign(nmono, -1);
  mono_dir.assign(nmono, -1);
  for (int m = 0; m < nmono; m++) {
    for (int c = 0; c < 3; c++) {
      mono_pow[3 * m + c] = list[m][c];
      if (list[m][c] > 0) {
        auto d = list[m];
        d[c]--;
        mono_dec[3 * m + c] = index[d];
        if (mono_parent[m] < 0) {
          mono_parent[m] = index[d];
          mono_dir[m] = c;
        }
      }
    }
  }
  // evaluation order: by degree over the whole list (parents before children)
  mono_order.resize(nmono);
  for (int m = 0; m < nmono; m++) mono_order[m] = m;
  std::stable_sort(mono_order.begin(), mono_order.end(), [&](int x, int y) {
    return degree_less(list[x], list[y]);
  });
  basic_mono.resize(nbasic);
  basic_mu.resize(nbasic);
  for (int a = 0; a < nbasic; a++) {
    basic_mono[a] = index[{basic[4 * a + 1], basic[4 * a + 2], basic[4 * a + 3]}];
    basic_mu[a] = basic[4 * a];
  }
  nneigh_max = 0;
}

void PairMTP::build_times()
{
  const int ntimes = (int) times.size() / 4;
  times_gather = 1;
  for (int r = 0; r < ntimes; r++) {
    const int *t = &times[4 * r];
    if (t[3] <= t[0] || t[3] <= t[1]) times_gather = 0;
  }
  fw_start.assign(nmoments + 1, 0);
  bw_start.assign(nmoments + 1, 0);
  fw_a.clear();
  fw_b.clear();
  fw_mult.clear();
  bw_k.clear();
  bw_o.clear();
  bw_mult.clear();
  if (!times_gather) return;
  std::vector<std::vector<int>> fw(nmoments), bw(nmoments);
  for (int r = 0; r < ntimes; r++) {
    const int *t = &times[4 * r];
    fw[t[3]].push_back(r);
    bw[t[0]].push_back(4 * r + 1);    // role i: the other factor is j
    bw[t[1]].push_back(4 * r + 0);    // role j: the other factor is i
  }
  for (int m = 0; m < nmoments; m++) {
    fw_start[m] = (int) fw_a.size();
    for (int r : fw[m]) {
      fw_a.push_back(times[4 * r]);
      fw_b.push_back(times[4 * r + 1]);
      fw_mult.push_back((double) times[4 * r + 2]);
    }
    bw_start[m] = (int) bw_k.size();
    for (int code : bw[m]) {
      int r = code / 4;
      bw_k.push_back(times[4 * r + 3]);
      bw_o.push_back(times[4 * r + (code % 4)]);
      bw_mult.push_back((double) times[4 * r + 2]);
    }
  }
  fw_start[nmoments] = (int) fw_a.size();
  bw_start[nmoments] = (int) bw_k.size();
}

void PairMTP::grow_neigh(int n)
{
  if (n <= nneigh_max) return;
  nneigh_max = n + 16;
  size_t N = nneigh_max;
  for (auto *v : {&nb_r, &nb_ir, &nb_ux, &nb_uy, &nb_uz, &nb_s, &nb_gx, &nb_gy, &nb_gz}) v->assign(N, 0.0);
  nb_f.assign(N * rfcount, 0.0);
  nb_df.assign(N * rfcount, 0.0);
  nb_q.assign(N * rbsize, 0.0);
  nb_dq.assign(N * rbsize, 0.0);
  tmp_d.assign(N * 4, 0.0);
  tmp_j.assign(N, 0);
  tmp_t.assign(N, 0);
  nb_mono.assign(N * nmono, 0.0);
  nb_w.assign(N * nmono_basic, 0.0);
  nb_v.assign(N * nmono_basic, 0.0);
  nb_j.assign(N, 0);
  nb_t.assign(N, 0);
}

/* ----------------------------------------------------------------------
   site energy of local atom i; forces and virial added when f != nullptr;
   the grade of i in gamma when want_grade
------------------------------------------------------------------------- */

double PairMTP::site(int i, int it, int jnum, const int *jlist, double **x, int *type, double **f,
                     int /*eflag*/, int vflag, bool want_grade, double &gamma)
{
  const double cut2 = max_dist * max_dist;
  const double xi = x[i][0], yi = x[i][1], zi = x[i][2];
  grow_neigh(jnum);
  const size_t N = nneigh_max;

  double *__restrict R = nb_r.data();
  double *__restrict IR = nb_ir.data();
  double *__restrict UX = nb_ux.data();
  double *__restrict UY = nb_uy.data();
  double *__restrict UZ = nb_uz.data();
  double *__restrict F = nb_f.data();
  double *__restrict DF = nb_df.data();
  double *__restrict Q = nb_q.data();
  double *__restrict MO = nb_mono.data();

  // ---- neighbours in range, sorted by species (so radial loops vectorise)
  int n = 0;
  seg_start.assign(nspecies + 1, 0);
  for (int jj = 0; jj < jnum; jj++) {
    int j = jlist[jj] & NEIGHMASK;
    int jt = type2species[type[j]];
    if (jt < 0) continue;
    double dx = x[j][0] - xi, dy = x[j][1] - yi, dz = x[j][2] - zi;
    double rsq = dx * dx + dy * dy + dz * dz;
    if (rsq >= cut2) continue;
    if (rsq == 0.0) error->one(FLERR, "pair_style mtp: two atoms at the same position");
    tmp_j[n] = j;
    tmp_t[n] = jt;
    tmp_d[4 * n] = dx;
    tmp_d[4 * n + 1] = dy;
    tmp_d[4 * n + 2] = dz;
    tmp_d[4 * n + 3] = rsq;
    seg_start[jt + 1]++;
    n++;
  }
  for (int t = 0; t < nspecies; t++) seg_start[t + 1] += seg_start[t];
  {
    int fill[64];
    std::vector<int> fillv;
    int *fp = fill;
    if (nspecies > 64) {
      fillv.resize(nspecies);
      fp = fillv.data();
    }
    for (int t = 0; t < nspecies; t++) fp[t] = seg_start[t];
    for (int q = 0; q < n; q++) {
      const int k = fp[tmp_t[q]]++;
      const double r = sqrt(tmp_d[4 * q + 3]);
      nb_j[k] = tmp_j[q];
      nb_t[k] = tmp_t[q];
      R[k] = r;
      IR[k] = 1.0 / r;
      UX[k] = tmp_d[4 * q] / r;
      UY[k] = tmp_d[4 * q + 1] / r;
      UZ[k] = tmp_d[4 * q + 2] / r;
    }
  }

  // ---- radial functions: Chebyshev basis times scaling * (R - r)^2
  {
    double *__restrict DQ = nb_dq.data();
    const double inv_w = 1.0 / (max_dist - min_dist);
    const double ds = 2.0 * inv_w;
    const double mid = min_dist + max_dist;
    // T_b in Q[b], dT_b/dr in DQ[b] first
    double *T0 = Q, *D0 = DQ;
    for (int k = 0; k < n; k++) {
      T0[k] = 1.0;
      D0[k] = 0.0;
    }
    if (rbsize > 1) {
      double *T1 = Q + N, *D1 = DQ + N;
#pragma omp simd
      for (int k = 0; k < n; k++) {
        T1[k] = (2.0 * R[k] - mid) * inv_w;
        D1[k] = ds;
      }
    }
    for (int b = 2; b < rbsize; b++) {
      double *Tb = Q + b * N, *Db = DQ + b * N;
      const double *T1 = Q + (b - 1) * N, *D1 = DQ + (b - 1) * N;
      const double *T2 = Q + (b - 2) * N, *D2 = DQ + (b - 2) * N;
#pragma omp simd
      for (int k = 0; k < n; k++) {
        const double s = (2.0 * R[k] - mid) * inv_w;
        Tb[k] = 2.0 * s * T1[k] - T2[k];
        Db[k] = 2.0 * (ds * T1[k] + s * D1[k]) - D2[k];
      }
    }
    // times the smoothing: Q_b = T_b sm, dQ_b = dT_b sm + T_b dsm
    for (int b = 0; b < rbsize; b++) {
      double *Tb = Q + b * N, *Db = DQ + b * N;
#pragma omp simd
      for (int k = 0; k < n; k++) {
        const double h = max_dist - R[k];
        const double sm = scaling * h * h;
        const double dsm = -2.0 * scaling * h;
        Db[k] = Db[k] * sm + Tb[k] * dsm;
        Tb[k] = Tb[k] * sm;
      }
    }
    // f_mu = sum_b c[t_i][t_j][mu][b] Q_b, segment by segment of equal t_j
    for (int mu = 0; mu < rfcount; mu++) {
      double *Fm = F + mu * N, *DFm = DF + mu * N;
      for (int k = 0; k < n; k++) Fm[k] = DFm[k] = 0.0;
    }
    for (int jt = 0; jt < nspecies; jt++) {
      const int k0 = seg_start[jt], k1 = seg_start[jt + 1];
      if (k0 == k1) continue;
      const double *cc = &radial_coeffs[((size_t) it * nspecies + jt) * rfcount * rbsize];
      for (int mu = 0; mu < rfcount; mu++) {
        double *Fm = F + mu * N, *DFm = DF + mu * N;
        for (int b = 0; b < rbsize; b++) {
          const double c = cc[mu * rbsize + b];
          const double *Qb = Q + b * N, *DQb = DQ + b * N;
#pragma omp simd
          for (int k = k0; k < k1; k++) {
            Fm[k] += c * Qb[k];
            DFm[k] += c * DQb[k];
          }
        }
      }
    }
  }

  // ---- monomials of the unit vectors
  for (int mi = 0; mi < nmono; mi++) {
    const int m = mono_order[mi];
    double *out = MO + m * N;
    const int p = mono_parent[m];
    if (p < 0) {
      for (int k = 0; k < n; k++) out[k] = 1.0;
      continue;
    }
    const double *in = MO + p * N;
    const double *u = mono_dir[m] == 0 ? UX : (mono_dir[m] == 1 ? UY : UZ);
#pragma omp simd
    for (int k = 0; k < n; k++) out[k] = in[k] * u[k];
  }

  // ---- basic moments
  double *M = mom.data();
  std::fill(mom.begin(), mom.end(), 0.0);
  for (int a = 0; a < nbasic; a++) {
    const double *fa = F + basic_mu[a] * N;
    const double *ma = MO + basic_mono[a] * N;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int k = 0; k < n; k++) sum += fa[k] * ma[k];
    M[a] = sum;
  }
  // ---- contractions
  const int ntimes = (int) times.size() / 4;
  const int *tm = times.data();
  if (times_gather) {
    const int *fs = fw_start.data();
    const int *fa = fw_a.data();
    const int *fb = fw_b.data();
    const double *fm = fw_mult.data();
    for (int k = nbasic; k < nmoments; k++) {
      double acc = M[k];
      for (int e = fs[k]; e < fs[k + 1]; e++) acc += fm[e] * M[fa[e]] * M[fb[e]];
      M[k] = acc;
    }
  } else {
    for (int r = 0; r < ntimes; r++) {
      const int *t = tm + 4 * r;
      M[t[3]] += t[2] * M[t[0]] * M[t[1]];
    }
  }
  // ---- site energy
  double V = species_coeffs[it];
  for (int l = 0; l < nscalar; l++) V += moment_coeffs[l] * M[mapping[l]];

  if (!f && !want_grade) return V;

  // ---- dV/dM, reverse accumulation
  double *D = dmom.data();
  std::fill(dmom.begin(), dmom.end(), 0.0);
  for (int l = 0; l < nscalar; l++) D[mapping[l]] += moment_coeffs[l];
  if (times_gather) {
    const int *bs = bw_start.data();
    const int *bk = bw_k.data();
    const int *bo = bw_o.data();
    const double *bm = bw_mult.data();
    for (int m = nmoments - 1; m >= 0; m--) {
      double acc = D[m];
      for (int e = bs[m]; e < bs[m + 1]; e++) acc += bm[e] * D[bk[e]] * M[bo[e]];
      D[m] = acc;
    }
  } else {
    for (int r = ntimes - 1; r >= 0; r--) {
      const int *t = tm + 4 * r;
      double d = D[t[3]];
      if (d == 0.0) continue;
      D[t[0]] += t[2] * d * M[t[1]];
      D[t[1]] += t[2] * d * M[t[0]];
    }
  }

  // ---- forces and virial
  if (f) {
    // W_m = sum_{a in m} D_a f_mu(a), V_m = sum_{a in m} D_a f'_mu(a)
    double *__restrict W = nb_w.data();
    double *__restrict VV = nb_v.data();
    for (int m = 0; m < nmono_basic; m++)
      for (int k = 0; k < n; k++) W[m * N + k] = VV[m * N + k] = 0.0;
    for (int a = 0; a < nbasic; a++) {
      const double d = D[a];
      if (d == 0.0) continue;
      const double *fa = F + basic_mu[a] * N;
      const double *dfa = DF + basic_mu[a] * N;
      double *w = W + basic_mono[a] * N;
      double *v = VV + basic_mono[a] * N;
#pragma omp simd
      for (int k = 0; k < n; k++) {
        w[k] += d * fa[k];
        v[k] += d * dfa[k];
      }
    }
    // G = [sum_m (V_m - deg_m W_m / r) m] u + [sum_m W_m grad m] / r
    double *__restrict S = nb_s.data();
    double *__restrict GX = nb_gx.data();
    double *__restrict GY = nb_gy.data();
    double *__restrict GZ = nb_gz.data();
    for (int k = 0; k < n; k++) S[k] = GX[k] = GY[k] = GZ[k] = 0.0;
    for (int m = 0; m < nmono_basic; m++) {
      const int px = mono_pow[3 * m], py = mono_pow[3 * m + 1], pz = mono_pow[3 * m + 2];
      const double deg = px + py + pz;
      const double *w = W + m * N;
      const double *v = VV + m * N;
      const double *mo = MO + m * N;
#pragma omp simd
      for (int k = 0; k < n; k++) S[k] += (v[k] - deg * w[k] * IR[k]) * mo[k];
      if (px) {
        const double *lo = MO + mono_dec[3 * m] * N;
#pragma omp simd
        for (int k = 0; k < n; k++) GX[k] += px * w[k] * lo[k];
      }
      if (py) {
        const double *lo = MO + mono_dec[3 * m + 1] * N;
#pragma omp simd
        for (int k = 0; k < n; k++) GY[k] += py * w[k] * lo[k];
      }
      if (pz) {
        const double *lo = MO + mono_dec[3 * m + 2] * N;
#pragma omp simd
        for (int k = 0; k < n; k++) GZ[k] += pz * w[k] * lo[k];
      }
    }
    double fix = 0.0, fiy = 0.0, fiz = 0.0;
    for (int k = 0; k < n; k++) {
      const double Gx = S[k] * UX[k] + GX[k] * IR[k];
      const double Gy = S[k] * UY[k] + GY[k] * IR[k];
      const double Gz = S[k] * UZ[k] + GZ[k] * IR[k];
      const int j = nb_j[k];
      fix += Gx;
      fiy += Gy;
      fiz += Gz;
      f[j][0] -= Gx;
      f[j][1] -= Gy;
      f[j][2] -= Gz;
      if (vflag) {
        const double r = R[k];
        const double dx = UX[k] * r, dy = UY[k] * r, dz = UZ[k] * r;
        double vv[6];
        vv[0] = -dx * Gx;
        vv[1] = -dy * Gy;
        vv[2] = -dz * Gz;
        vv[3] = -0.5 * (dx * Gy + dy * Gx);
        vv[4] = -0.5 * (dx * Gz + dz * Gx);
        vv[5] = -0.5 * (dy * Gz + dz * Gy);
        if (vflag_global)
          for (int c = 0; c < 6; c++) virial[c] += vv[c];
        if (vflag_atom)
          for (int c = 0; c < 6; c++) {
            vatom[i][c] += 0.5 * vv[c];
            vatom[j][c] += 0.5 * vv[c];
          }
      }
    }
    f[i][0] += fix;
    f[i][1] += fiy;
    f[i][2] += fiz;
  }

  // ---- extrapolation grade
  if (want_grade) {
    double *b = brow.data();
    std::fill(brow.begin(), brow.end(), 0.0);
    for (int l = 0; l < nscalar; l++) b[l] = M[mapping[l]];
    if (layout >= 1) b[nscalar + it] = 1.0;
    if (layout == 2) {
      std::fill(dvdc.begin(), dvdc.end(), 0.0);
      for (int k = 0; k < n; k++) {
        double *dv = &dvdc[(size_t) nb_t[k] * rfcount * rbsize];
        for (int a = 0; a < nbasic; a++) {
          double d = D[a];
          if (d == 0.0) continue;
          double w = d * MO[basic_mono[a] * N + k];
          double *dvm = dv + (size_t) basic_mu[a] * rbsize;
          for (int bb = 0; bb < rbsize; bb++) dvm[bb] += w * Q[bb * N + k];
        }
      }
      int off = nscalar + nspecies + it * nspecies * rfcount * rbsize;
      std::copy(dvdc.begin(), dvdc.end(), b + off);
    }
    double *c = crow.data();
    std::fill(crow.begin(), crow.end(), 0.0);
    const double *A = ainv.data();
    for (int l = 0; l < asize; l++) {
      double bl = b[l];
      if (bl == 0.0) continue;
      const double *Ar = A + (size_t) l * asize;
#pragma omp simd
      for (int kk = 0; kk < asize; kk++) c[kk] += bl * Ar[kk];
    }
    double g = 0.0;
    for (int kk = 0; kk < asize; kk++) g = std::max(g, std::fabs(c[kk]));
    gamma = g;
  }
  return V;
}

/* ---------------------------------------------------------------------- */

void PairMTP::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);

  double **x = atom->x;
  double **f = atom->f;
  int *type = atom->type;
  int nlocal = atom->nlocal;

  int inum = list->inum;
  int *ilist = list->ilist;
  int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;

  bool do_grade = have_active_set && (update->ntimestep % grade_every == 0);
  if (do_grade && atom->nmax > nmax_grade) {
    memory->destroy(grade);
    nmax_grade = atom->nmax;
    memory->create(grade, nmax_grade, "pair:mtp:grade");
  }
  if (do_grade)
    for (int i = 0; i < nlocal; i++) grade[i] = 0.0;

  double gmax = 0.0;
  for (int ii = 0; ii < inum; ii++) {
    int i = ilist[ii];
    int it = type2species[type[i]];
    if (it < 0) continue;
    double gamma = 0.0;
    double V = site(i, it, numneigh[i], firstneigh[i], x, type, f, eflag, vflag_either, do_grade,
                    gamma);
    if (eflag_global) eng_vdwl += V;
    if (eflag_atom) eatom[i] += V;
    if (do_grade) {
      grade[i] = gamma;
      gmax = std::max(gmax, gamma);
    }
  }

  if (do_grade) {
    double all;
    MPI_Allreduce(&gmax, &all, 1, MPI_DOUBLE, MPI_MAX, world);
    max_grade = all;
    grade_step = update->ntimestep;
    nlocal_grade = nlocal;
    bool over_save = !save_file.empty() && all > save_threshold;
    bool over_break = break_threshold >= 0.0 && all > break_threshold;
    if (over_save || over_break) {
      if (!save_file.empty()) write_cfg(update->ntimestep, all);
    }
    if (over_break) {
      if (break_halt) {
        if (comm->me == 0)
          utils::logmesg(lmp,
                         "pair_style mtp: extrapolation grade {:.6g} > break threshold {:.6g} "
                         "at step {}: halting the run\n",
                         all, break_threshold, update->ntimestep);
        timer->force_timeout();
      } else {
        error->all(FLERR,
                   "pair_style mtp: extrapolation grade {:.6g} exceeds the break threshold {:.6g} "
                   "at step {}: stopping (configuration saved to {})",
                   all, break_threshold, update->ntimestep,
                   save_file.empty() ? std::string("nowhere") : save_file);
      }
    }
  }
}

/* ----------------------------------------------------------------------
   append the current configuration (with per-atom grades) to the .cfg file
------------------------------------------------------------------------- */

void PairMTP::write_cfg(bigint step, double gmax)
{
  int nlocal = atom->nlocal;
  std::vector<double> buf;
  buf.reserve((size_t) 6 * nlocal);
  for (int i = 0; i < nlocal; i++) {
    int s = type2species[atom->type[i]];
    if (s < 0) continue;
    buf.push_back((double) atom->tag[i]);
    buf.push_back((double) s);
    buf.push_back(atom->x[i][0] - domain->boxlo[0]);
    buf.push_back(atom->x[i][1] - domain->boxlo[1]);
    buf.push_back(atom->x[i][2] - domain->boxlo[2]);
    buf.push_back(grade[i]);
  }
  int nme = (int) buf.size();
  int nprocs = comm->nprocs;
  std::vector<int> counts(nprocs), displs(nprocs);
  MPI_Gather(&nme, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, world);
  std::vector<double> all;
  if (comm->me == 0) {
    int tot = 0;
    for (int p = 0; p < nprocs; p++) {
      displs[p] = tot;
      tot += counts[p];
    }
    all.resize(tot);
  }
  MPI_Gatherv(buf.data(), nme, MPI_DOUBLE, all.data(), counts.data(), displs.data(), MPI_DOUBLE,
              0, world);
  if (comm->me != 0) return;

  int natoms = (int) all.size() / 6;
  std::vector<int> order(natoms);
  for (int k = 0; k < natoms; k++) order[k] = k;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return all[6 * a] < all[6 * b]; });
  FILE *fp = fopen(save_file.c_str(), "a");
  if (!fp) {
    error->warning(FLERR, "pair_style mtp: cannot open {} to save a configuration", save_file);
    return;
  }
  fprintf(fp, "BEGIN_CFG\n Size\n    %d\n", natoms);
  if (domain->xperiodic || domain->yperiodic || domain->zperiodic) {
    fprintf(fp, " Supercell\n");
    fprintf(fp, "    %.17g %.17g %.17g\n", domain->xprd, 0.0, 0.0);
    fprintf(fp, "    %.17g %.17g %.17g\n", domain->xy, domain->yprd, 0.0);
    fprintf(fp, "    %.17g %.17g %.17g\n", domain->xz, domain->yz, domain->zprd);
  }
  fprintf(fp, " AtomData:  id type       cartes_x      cartes_y      cartes_z    nbh_grades\n");
  for (int k = 0; k < natoms; k++) {
    const double *p = &all[6 * order[k]];
    fprintf(fp, "    %d %d %.17g %.17g %.17g %.17g\n", k + 1, (int) p[1], p[2], p[3], p[4], p[5]);
  }
  fprintf(fp, " Feature   MV_grade\t%.17g\n", gmax);
  fprintf(fp, " Feature   lammps_step\t" BIGINT_FORMAT "\n", step);
  fprintf(fp, "END_CFG\n\n");
  fclose(fp);
}

/* ---------------------------------------------------------------------- */

void PairMTP::compute_grades_now()
{
  if (!have_active_set) return;
  if (!list) error->all(FLERR, "pair_style mtp: grades requested before the first run (no neighbour list)");
  if (atom->nmax > nmax_grade) {
    memory->destroy(grade);
    nmax_grade = atom->nmax;
    memory->create(grade, nmax_grade, "pair:mtp:grade");
  }
  int nlocal = atom->nlocal;
  for (int i = 0; i < nlocal; i++) grade[i] = 0.0;
  double gmax = 0.0;
  for (int ii = 0; ii < list->inum; ii++) {
    int i = list->ilist[ii];
    int it = type2species[atom->type[i]];
    if (it < 0) continue;
    double gamma = 0.0;
    site(i, it, list->numneigh[i], list->firstneigh[i], atom->x, atom->type, nullptr, 0, 0, true,
         gamma);
    grade[i] = gamma;
    gmax = std::max(gmax, gamma);
  }
  MPI_Allreduce(&gmax, &max_grade, 1, MPI_DOUBLE, MPI_MAX, world);
  grade_step = update->ntimestep;
  nlocal_grade = nlocal;
}

/* ---------------------------------------------------------------------- */

void *PairMTP::extract(const char *str, int &dim)
{
  dim = 0;
  if (strcmp(str, "max_grade") == 0) return (void *) &max_grade;
  if (strcmp(str, "cutoff") == 0) return (void *) &max_dist;
  return nullptr;
}

void *PairMTP::extract_peratom(const char *str, int &ncol)
{
  if (strcmp(str, "grade") == 0) {
    ncol = 0;
    return (void *) grade;
  }
  return nullptr;
}

double PairMTP::memory_usage()
{
  double bytes = Pair::memory_usage();
  bytes += (double) nmax_grade * sizeof(double);
  bytes += (double) ainv.size() * sizeof(double);
  return bytes;
}
