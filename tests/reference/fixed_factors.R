## ---------------------------------------------------------------------------
## fixed_factors.R -- lme4 REML reference for a model with a fixed factor of
## 1,501 levels (contemporary groups) beside the m2 random terms.
##
## What it computes
##   Data: sparsereml's simulated trial network with seed 7, 8 trials, 20,000
##   trees, 160 mothers (half-sib trees with a diameter: 18,627 records), and
##   CG = sparsereml.datasets.contemporary_groups(df, 1500) (each trial's trees
##   in Tree order cut into consecutive groups; 1,501 levels).  Written by
##     PYTHONPATH=src .venv/bin/python -c "import sparsereml as sr; \
##       df, _ = sr.datasets.trial_network(seed=7, trials=8, trees=20000, mothers=160); \
##       df['CG'] = sr.datasets.contemporary_groups(df, 1500); \
##       df[['Trial', 'Block', 'Mother', 'Tree', 'CG', 'dbh']].to_csv('/tmp/cg7.csv', index=False)"
##   Model (REML, bobyqa with rhoend 2e-11):
##     lmer(dbh ~ CG + (1|Trial:Block) + (1|Mother) + (1|Trial:Mother))
##   CG, Trial, Block, Mother are factors; Block is numbered within trial.
##
## Output: tests/reference/fixed_factors.json with data_check (nrow, sum of
##   dbh, number of CG levels, sum of CG codes), varcomp (lme4's group names,
##   "Residual"), logLik_REML, ncol_X (= rank of X: lme4 drops nothing here),
##   fixef and fixef_se for the intercept and the first 20 CG contrasts,
##   fixef_sum and fixef_se_sum over all columns, versions, timing_seconds.
##   Numbers are written with 15 significant digits.
##
## Rerun (from the repository root), after writing the data as above:
##   Rscript tests/reference/fixed_factors.R /tmp/cg7.csv [tests/reference/fixed_factors.json]
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
csv <- if (length(args) >= 1) args[1] else "/tmp/cg7.csv"
out_file <- if (length(args) >= 2) args[2] else "tests/reference/fixed_factors.json"

d <- read.csv(csv)
for (v in c("Trial", "Block", "Mother", "CG")) d[[v]] <- factor(d[[v]], levels = sort(unique(d[[v]])))
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 2e-11, maxfun = 1e5),
                    calc.derivs = FALSE)
t0 <- proc.time()[["elapsed"]]
m <- lmer(dbh ~ CG + (1 | Trial:Block) + (1 | Mother) + (1 | Trial:Mother), data = d, REML = TRUE,
          control = ctrl)
secs <- proc.time()[["elapsed"]] - t0
vc <- as.data.frame(VarCorr(m))
fe <- fixef(m)
se <- sqrt(diag(as.matrix(vcov(m))))
first <- seq_len(21)
out <- list(
  created = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
  formula = "dbh ~ CG + (1 | Trial:Block) + (1 | Mother) + (1 | Trial:Mother)",
  data_check = list(nrow = nrow(d), sum_dbh = sum(d$dbh), n_cg = nlevels(d$CG),
                    sum_cg = sum(as.numeric(as.character(d$CG)))),
  varcomp = setNames(as.list(vc$vcov), vc$grp),
  logLik_REML = as.numeric(logLik(m, REML = TRUE)),
  ncol_X = ncol(getME(m, "X")),
  fixef = as.list(fe[first]),
  fixef_se = as.list(se[first]),
  fixef_sum = sum(fe),
  fixef_se_sum = sum(se),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))),
  timing_seconds = secs
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = 15, pretty = TRUE), out_file)
cat("wrote", out_file, "in", secs, "s\n")
