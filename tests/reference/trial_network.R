## ---------------------------------------------------------------------------
## trial_network.R -- REML reference numbers for a simulated half-sib
## progeny-trial network (lme4 and glmmTMB).
##
## What it computes
##   Data come from /work/shared/data/simulate_trees.py (not copied here):
##     python simulate_trees.py --seed 7  --trials 8  --trees 20000 --mothers 160 --out /tmp/net7
##     python simulate_trees.py --seed 11 --trials 31 --trees 60000 --mothers 400 --out /tmp/net11
##   (run with /work/main/.venv/bin/python, numpy 2.4.6, pandas 3.1.1).
##   Only half-sib trees with a diameter are analysed: Father == 0 & !is.na(dbh).
##   Trial, Block, Mother are factors; Block is numbered within trial, so the
##   block factor is Trial:Block.  Models, all REML:
##     m2_lme4     lmer(dbh ~ Trial + (1|Trial:Block) + (1|Mother) + (1|Trial:Mother))
##     m2_glmmTMB  the same model with glmmTMB(REML = TRUE)
##     m2b_glmmTMB same random part, dispformula = ~ 0 + Trial (a residual
##                 variance per trial)
##     m2c_glmmTMB dbh ~ Trial + (1|Mother) + (1|Trial:Mother) + diag(0 + Trial | Block),
##                 dispformula = ~ 0 + Trial (a block variance and a residual
##                 variance per trial)
##   glmmTMB 1.1.5, gaussian family: the dispersion linear predictor is
##   log(sigma^2), i.e. residual variance of trial t = exp(coef "Trial<t>")
##   (checked on m2: exp(fixef(m)$disp) == sigma(m)^2; see "dispersion_check").
##
## Output: tests/reference/trial_network.json, one object per data set
##   ("net7", "net11"), keyed by the basename of the data directory.
##
## Rerun (from the repository root, /work/main), after generating the data:
##   Rscript tests/reference/trial_network.R /tmp/net7 /tmp/net11
##   (optional last argument ending in .json: output file)
##
## Written with R 4.2.2 Patched (2022-11-10 r83330), lme4 1.1.31,
## glmmTMB 1.1.5, TMB 1.9.2, Matrix 1.5.3, jsonlite 1.8.4.
## Date: see "created" in the JSON.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
out_file <- "tests/reference/trial_network.json"
if (length(args) && grepl("\\.json$", args[length(args)])) {
  out_file <- args[length(args)]
  args <- args[-length(args)]
}
data_dirs <- if (length(args)) args else c("/tmp/net7", "/tmp/net11")

simulator <- "/work/main/.venv/bin/python /work/shared/data/simulate_trees.py"
sim_args <- c(net7  = "--seed 7 --trials 8 --trees 20000 --mothers 160",
              net11 = "--seed 11 --trials 31 --trees 60000 --mothers 400")

named_list <- function(x) as.list(setNames(unname(x), names(x)))
elapsed <- function(expr) {
  t0 <- proc.time()[["elapsed"]]
  force(expr)
  proc.time()[["elapsed"]] - t0
}

## ---- lme4 ----------------------------------------------------------------
lmer_ctrl <- list(
  bobyqa = lmerControl(optimizer = "bobyqa",
                       optCtrl = list(rhobeg = 2e-4, rhoend = 2e-11, maxfun = 1e5)),
  nloptwrap = lmerControl(optimizer = "nloptwrap",
                          optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15,
                                         xtol_rel = 1e-13, ftol_rel = 1e-15,
                                         maxeval = 1e5))
)

fit_lme4 <- function(formula, dat) {
  fits <- list(); timing <- list()
  for (o in names(lmer_ctrl)) {
    timing[[o]] <- elapsed(fits[[o]] <- lmer(formula, data = dat, REML = TRUE,
                                             control = lmer_ctrl[[o]]))
  }
  m <- fits$bobyqa; m2 <- fits$nloptwrap
  vc <- as.data.frame(VarCorr(m)); vc2 <- as.data.frame(VarCorr(m2))
  vc$grp[vc$grp == "Residual"] <- "units"
  ll <- logLik(m, REML = TRUE)
  fe <- fixef(m)
  se <- setNames(sqrt(diag(as.matrix(vcov(m)))), names(fe))
  re <- ranef(m)
  u_mother <- setNames(re$Mother[[1]], rownames(re$Mother))
  rel <- function(a, b) max(abs(a - b) / abs(a))
  agree <- c(varcomp = rel(vc$vcov, vc2$vcov),
             fixef = rel(fe, fixef(m2)),
             logLik = rel(as.numeric(ll), as.numeric(logLik(m2))))
  list(
    package = "lme4",
    formula = paste(deparse(formula, width.cutoff = 500), collapse = " "),
    varcomp = as.list(setNames(vc$vcov, vc$grp)),
    logLik_REML = as.numeric(ll),
    df = attr(ll, "df"),
    REMLcrit = REMLcrit(m),
    fixef = named_list(fe),
    fixef_se = named_list(se),
    ranef_Mother_first20 = named_list(head(u_mother, 20)),
    ranef_ss = lapply(re, function(d) sum(d[[1]]^2)),
    ranef_levels = lapply(re, nrow),
    optimizer = "bobyqa (rhobeg = 2e-4, rhoend = 2e-11, maxfun = 1e5)",
    optimizer_agreement = max(agree),
    optimizer_agreement_detail = list(
      definition = paste("largest relative difference between the bobyqa fit and a",
                         "tight nloptwrap refit"),
      by_quantity = as.list(agree),
      REMLcrit = lapply(fits, REMLcrit),
      bobyqa_max_abs_gradient = max(abs(m@optinfo$derivs$gradient)),
      convergence_messages = as.list(c(m@optinfo$conv$lme4$messages, m@optinfo$warnings))),
    timing_seconds = timing
  )
}

## ---- glmmTMB -------------------------------------------------------------
tmb_ctrl <- glmmTMBControl(optCtrl = list(iter.max = 1e4, eval.max = 1e4, rel.tol = 1e-14))

## Fit with nlminb, then polish: Newton steps on the REML objective (Hessian
## by optimHess from TMB's exact gradient) and a refit started at the
## polished parameters, so that the reported fit is a proper glmmTMB object.
##
## Variances on the boundary: glmmTMB works with log SDs, so a random-effect
## variance whose REML estimate is 0 drifts towards -Inf (nlminb stops
## somewhere around log SD -3 ... -9) and the Hessian becomes singular.  A log
## SD below -2 (variance < 0.02, against residual variances near 1000) is
## treated as a boundary candidate; it is confirmed if setting it to
## LOG_SD_ZERO does not increase the objective.  Confirmed ones are fixed at
## LOG_SD_ZERO (variance exp(-30), i.e. 0 for all purposes) with glmmTMB's
## `map`, reported as exactly 0, and the one-sided derivative of -logLik with
## respect to that variance at 0 is recorded (positive = 0 is a KKT optimum).
LOG_SD_ZERO <- -15

fit_glmmTMB <- function(formula, dispformula, dat) {
  warns <- character(0)
  fit_quietly <- function(...) withCallingHandlers(
    glmmTMB(formula, dispformula = dispformula, data = dat, REML = TRUE,
            control = tmb_ctrl, ...),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    })

  t_first <- NA
  tm <- elapsed({
    t_first <- elapsed(m0 <- fit_quietly())
    first <- list(nlminb_message = m0$fit$message,
                  max_abs_gradient = max(abs(m0$sdr$gradient.fixed)),
                  REML_objective = m0$fit$objective,
                  warnings = as.list(unique(warns)))
    obj <- m0$obj                      # objective in all parameters (no map)
    p <- m0$fit$par
    ith <- which(names(p) == "theta")

    ## boundary candidates
    at_bound <- integer(0)
    for (j in ith[p[ith] < -2]) {
      q <- p; q[j] <- LOG_SD_ZERO
      if (obj$fn(q) <= obj$fn(p)) at_bound <- c(at_bound, j)
    }
    p[at_bound] <- LOG_SD_ZERO
    free <- setdiff(seq_along(p), at_bound)

    ## Newton polish of the free parameters
    fn <- function(x) { q <- p; q[free] <- x; obj$fn(q) }
    gr <- function(x) { q <- p; q[free] <- x; as.vector(obj$gr(q))[free] }
    x <- p[free]
    steps <- numeric(0)
    for (i in 1:5) {
      step <- solve(optimHess(x, fn, gr), gr(x))
      x <- x - step
      steps <- c(steps, max(abs(step)))
      if (max(abs(step)) < 1e-8) break
    }
    p[free] <- x

    ## one-sided derivative wrt the variance at 0, for boundary parameters
    bound_deriv <- sapply(at_bound, function(j) {
      q <- p; q[j] <- 0.5 * log(1e-6)
      (obj$fn(q) - obj$fn(p)) / 1e-6
    })

    ## refit from the polished parameters (boundary ones fixed via map)
    pl <- obj$env$parList(p)
    map <- NULL
    if (length(at_bound)) {
      theta_map <- seq_along(ith)
      theta_map[match(at_bound, ith)] <- NA
      map <- list(theta = factor(theta_map))
    }
    warns <- character(0)
    m <- fit_quietly(start = list(betad = pl$betad, theta = pl$theta), map = map)
  })

  trials <- levels(dat$Trial)
  vc <- VarCorr(m)$cond
  varcomp <- list()
  for (g in names(vc)) {
    v <- diag(as.matrix(vc[[g]]))
    if (length(v) == 1) {
      varcomp[[g]] <- unname(v)
    } else {                           # diag(0 + Trial | Block): one variance per trial
      stopifnot(identical(names(v), paste0("Trial", trials)))
      for (k in seq_along(v)) varcomp[[paste0("block_T", trials[k])]] <- unname(v[k])
    }
  }
  disp <- fixef(m)$disp
  if (length(disp) == 1) {
    varcomp[["units"]] <- unname(exp(disp))          # log(sigma^2) parametrisation
  } else {
    stopifnot(identical(names(disp), paste0("Trial", trials)))
    for (k in seq_along(disp)) varcomp[[paste0("units_T", trials[k])]] <- unname(exp(disp[k]))
  }

  boundary <- names(varcomp)[unlist(varcomp) < 1e-12]
  varcomp[boundary] <- 0
  if (length(boundary)) stopifnot(length(boundary) == length(at_bound))

  ll <- logLik(m)
  fe <- fixef(m)$cond
  ## SEs conditional on the variance parameters, (X' V^-1 X)^-1 -- the lme4
  ## definition.  vcov() of a REML glmmTMB fit also propagates the uncertainty
  ## of the variance parameters (TMB sdreport), which makes its SEs larger.
  sdr_cond <- TMB::sdreport(m$obj, par.fixed = m$fit$par, ignore.parm.uncertainty = TRUE)
  is_beta <- names(sdr_cond$par.random) == "beta"
  se_cond <- setNames(sqrt(sdr_cond$diag.cov.random[is_beta]), names(fe))
  se_vcov <- setNames(sqrt(diag(vcov(m)$cond)), names(fe))

  grad <- m$sdr$gradient.fixed
  newton <- if (isTRUE(m$sdr$pdHess)) as.vector(m$sdr$cov.fixed %*% grad) else NA
  u_mother <- ranef(m)$cond$Mother
  u_mother <- setNames(u_mother[[1]], rownames(u_mother))

  list(
    package = "glmmTMB",
    formula = paste(deparse(formula, width.cutoff = 500), collapse = " "),
    dispformula = paste(deparse(dispformula), collapse = " "),
    varcomp = varcomp,
    boundary = as.list(boundary),
    boundary_derivative = as.list(setNames(bound_deriv, boundary)),
    logLik_REML = as.numeric(ll),
    df = attr(ll, "df") + length(at_bound),
    fixef = named_list(fe),
    fixef_se = named_list(se_cond),
    fixef_se_glmmTMB_vcov = named_list(se_vcov),
    fixef_disp = named_list(disp),
    ranef_Mother_first20 = named_list(head(u_mother, 20)),
    theta_internal = named_list(m$fit$par),
    convergence = list(
      first_fit = first,
      newton_polish_steps = as.list(steps),
      polish_change_max_abs = max(abs(p[free] - m0$fit$par[free])),
      nlminb_convergence = m$fit$convergence,
      nlminb_message = m$fit$message,
      iterations = m$fit$iterations,
      max_abs_gradient = max(abs(grad)),
      pdHess = m$sdr$pdHess,
      newton_step_max_abs = max(abs(newton)),
      newton_step_note = paste("first_fit: plain nlminb fit (rel.tol = 1e-14).  The",
                               "reported fit is a refit started from Newton-polished",
                               "parameters.  newton_step_max_abs = max |H^-1 g| at the",
                               "reported fit on glmmTMB's internal scale (log variance",
                               "for the dispersion, log SD for random effects): an",
                               "estimate of the remaining relative error."),
      warnings = as.list(unique(warns))),
    fit_object = m,
    timing_seconds = tm,
    timing_first_fit_seconds = t_first
  )
}

## ---- independent check of the REML log-likelihood -------------------------
## -2 logL_R = (n-p) log(2 pi) + log|V| + log|X'V^-1 X| + r'V^-1 r, V = Z G Z' + R,
## evaluated at the reported variance components through Henderson's mixed
## model equations: with W = [X Z] and M = W'R^-1 W + diag(0, G^-1),
##   log|V| + log|X'V^-1 X| = log|R| + log|G| + log|M|,
##   r'V^-1 r = y'R^-1 y - s'M^-1 s,  s = W'R^-1 y.
## Random effects with variance 0 (boundary) are dropped.
indicator <- function(f) t(as(factor(f), "sparseMatrix"))     # n x levels
reml_loglik_direct <- function(dat, vc) {
  ## REML is invariant to y -> y + X b; centring within trial limits rounding
  y <- dat$dbh - ave(dat$dbh, dat$Trial)
  X <- model.matrix(~ Trial, dat)
  tr <- as.character(dat$Trial)
  TB <- interaction(dat$Trial, dat$Block, drop = TRUE, sep = ":")
  Zs <- list(indicator(dat$Mother),
             indicator(interaction(dat$Trial, dat$Mother, drop = TRUE)),
             indicator(TB))
  g <- list(rep(vc[["Mother"]], ncol(Zs[[1]])),
            rep(vc[["Trial:Mother"]], ncol(Zs[[2]])))
  if (!is.null(vc[["Trial:Block"]])) {
    g[[3]] <- rep(vc[["Trial:Block"]], ncol(Zs[[3]]))
  } else {
    tb_trial <- sub(":.*", "", levels(TB))
    g[[3]] <- unlist(vc[paste0("block_T", tb_trial)])
  }
  Z <- do.call(cbind, Zs); g <- unlist(g)
  keep <- g > 0
  Z <- Z[, keep, drop = FALSE]; g <- g[keep]
  rvar <- if (!is.null(vc[["units"]])) rep(vc[["units"]], length(y))
          else unlist(vc[paste0("units_T", tr)])
  W <- cbind(Matrix(X, sparse = TRUE), Z)
  WR <- W / rvar
  M <- forceSymmetric(crossprod(W, WR) + Diagonal(x = c(rep(0, ncol(X)), 1 / g)))
  s <- as.vector(crossprod(WR, y))
  n <- length(y); p <- ncol(X)
  logdetM <- as.numeric(determinant(M, logarithm = TRUE)$modulus)
  quad <- sum(y^2 / rvar) - sum(s * as.vector(solve(M, s)))
  -0.5 * ((n - p) * log(2 * pi) + sum(log(rvar)) + sum(log(g)) + logdetM + quad)
}

## ---- one data set ------------------------------------------------------------
analyse <- function(dir) {
  key <- basename(dir)
  cat("==", key, "\n")
  trees <- read.csv(file.path(dir, "trees.csv"))
  truth <- fromJSON(file.path(dir, "truth.json"))
  dat <- trees[trees$Father == 0 & !is.na(trees$dbh), ]
  rownames(dat) <- NULL
  for (v in c("Trial", "Block", "Mother")) dat[[v]] <- factor(dat[[v]])
  n_levels <- list(
    Trial = nlevels(dat$Trial),
    `Trial:Block` = nlevels(interaction(dat$Trial, dat$Block, drop = TRUE)),
    Mother = nlevels(dat$Mother),
    `Trial:Mother` = nlevels(interaction(dat$Trial, dat$Mother, drop = TRUE)))

  f_m2 <- dbh ~ Trial + (1 | Trial:Block) + (1 | Mother) + (1 | Trial:Mother)
  f_m2c <- dbh ~ Trial + (1 | Mother) + (1 | Trial:Mother) + diag(0 + Trial | Block)

  models <- list()
  models$m2_lme4 <- fit_lme4(f_m2, dat)
  cat(sprintf("   m2_lme4      logLik %.10f  (%.1f s)\n", models$m2_lme4$logLik_REML,
              models$m2_lme4$timing_seconds$bobyqa))
  models$m2_glmmTMB <- fit_glmmTMB(f_m2, ~ 1, dat)
  models$m2b_glmmTMB <- fit_glmmTMB(f_m2, ~ 0 + Trial, dat)
  models$m2c_glmmTMB <- fit_glmmTMB(f_m2c, ~ 0 + Trial, dat)
  for (k in names(models)[-1])
    cat(sprintf("   %-12s logLik %.10f  (%.1f s)  %s\n", k, models[[k]]$logLik_REML,
                models[[k]]$timing_seconds, paste(models[[k]]$convergence$warnings, collapse = "; ")))

  ## glmmTMB's dispersion parametrisation, checked on m2
  g <- models$m2_glmmTMB$fit_object
  bd <- unname(fixef(g)$disp)
  dispersion_check <- list(
    disp_coef = bd,
    sigma_squared = sigma(g)^2,
    exp_disp = exp(bd),
    exp_2disp = exp(2 * bd),
    lme4_residual_variance = models$m2_lme4$varcomp$units,
    conclusion = "residual variance = exp(dispersion coefficient): glmmTMB 1.1.5 models log(sigma^2) for gaussian")
  stopifnot(abs(sigma(g)^2 / exp(bd) - 1) < 1e-12)

  ## lme4 vs glmmTMB on the same model
  a <- models$m2_lme4; b <- models$m2_glmmTMB
  vn <- names(a$varcomp)
  cmp <- list(
    logLik_lme4 = a$logLik_REML,
    logLik_glmmTMB = b$logLik_REML,
    logLik_abs_diff = abs(a$logLik_REML - b$logLik_REML),
    varcomp_max_rel_diff = max(abs(unlist(a$varcomp[vn]) / unlist(b$varcomp[vn]) - 1)),
    fixef_max_abs_diff = max(abs(unlist(a$fixef) - unlist(b$fixef))),
    fixef_se_max_rel_diff = max(abs(unlist(a$fixef_se) / unlist(b$fixef_se) - 1)),
    fixef_se_vcov_max_rel_diff = max(abs(unlist(a$fixef_se) / unlist(b$fixef_se_glmmTMB_vcov) - 1)))

  direct <- lapply(models, function(m) {
    ll <- reml_loglik_direct(dat, m$varcomp)
    list(logLik_REML_direct = ll, abs_diff = abs(ll - m$logLik_REML))
  })

  for (k in names(models)) models[[k]]$fit_object <- NULL
  list(
    simulator_command = sprintf("%s %s --out %s", simulator, sim_args[[key]], dir),
    truth_seed = truth$seed,
    data = list(
      filter = "Father == 0 & !is.na(dbh)",
      nobs = nrow(dat),
      sum_dbh = sum(dat$dbh),
      sum_dbh_sq = sum(dat$dbh^2),
      n_rows_trees_csv = nrow(trees),
      n_levels = n_levels),
    models = models,
    dispersion_check = dispersion_check,
    lme4_vs_glmmTMB_m2 = cmp,
    logLik_direct_check = direct
  )
}

result <- list()
for (dir in data_dirs) result[[basename(dir)]] <- analyse(dir)

result$notes <- c(
  "All fits are REML.  logLik_REML is the REML log-likelihood as reported by logLik() (lme4: logLik(m, REML = TRUE)); df as reported with it.",
  "glmmTMB 1.1.5, gaussian family: the dispersion model is on log(sigma^2); residual variance of trial t = exp(fixef(m)$disp['Trial<t>']), NOT exp(2 * coef).  Verified on m2: exp(disp) equals sigma(m)^2 and lme4's residual variance (see dispersion_check).",
  "varcomp names: 'Trial:Block', 'Mother', 'Trial:Mother', 'units' (single residual variance), 'units_T<t>' (residual variance of trial t), 'block_T<t>' (block variance of trial t, m2c, from diag(0 + Trial | Block)).",
  "fixef_se for glmmTMB fits is the SE conditional on the variance parameters, sqrt(diag((X'V^-1X)^-1)), from TMB::sdreport(..., ignore.parm.uncertainty = TRUE); it matches lme4's vcov().  fixef_se_glmmTMB_vcov is what vcov() of the REML glmmTMB fit returns: it also carries the uncertainty of the variance parameters and is slightly larger.",
  "glmmTMB fits: nlminb with rel.tol = 1e-14 first (it usually ends with 'singular convergence (7)' and a gradient around 1e-3, leaving relative errors around 1e-5 in the variances; see convergence$first_fit); then Newton steps on TMB's REML objective (optimHess of the exact gradient) until the largest step is below 1e-8 (the error after such a step is of order step^2), and a refit started there, which is the reported fit.  convergence$max_abs_gradient and newton_step_max_abs are for the reported fit.",
  "Boundary estimates (glmmTMB fits): a random-effect variance whose REML estimate is 0 is listed in 'boundary', reported as exactly 0 in varcomp, and fixed at log SD = -15 (variance ~1e-13) in the reported fit (glmmTMB map); 'boundary_derivative' is d(-logLik)/d(variance) at 0 (one-sided, step 1e-6): positive means 0 is the constrained optimum.  df counts these variances as parameters (as lme4 would).  Compare such entries with an absolute tolerance.",
  "logLik_direct_check: the REML log-likelihood recomputed in plain R (Matrix) from the reported variance components via Henderson's mixed model equations, -2 logL_R = (n-p) log(2 pi) + log|V| + log|X'V^-1X| + r'V^-1 r; it confirms the definition (incl. constants) and the residual-variance parametrisation of m2b/m2c.",
  "timing_seconds: lme4: per optimizer; glmmTMB: first nlminb fit + Newton polish + refit (timing_first_fit_seconds: first fit only).",
  "ranef_Mother_first20: conditional modes (BLUPs) of the first 20 Mother levels in R's level order (numeric order of the Mother id).")
result$versions <- list(R = R.version.string,
                        lme4 = as.character(packageVersion("lme4")),
                        glmmTMB = as.character(packageVersion("glmmTMB")),
                        TMB = as.character(packageVersion("TMB")),
                        Matrix = as.character(packageVersion("Matrix")),
                        simulator_python = "numpy 2.4.6, pandas 3.1.1 (/work/main/.venv)")
result$created <- format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z")
result$generator <- "tests/reference/trial_network.R"

writeLines(toJSON(result, digits = NA, auto_unbox = TRUE, pretty = TRUE), out_file)
cat("wrote", out_file, "\n")
