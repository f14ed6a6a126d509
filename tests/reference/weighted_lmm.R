## ---------------------------------------------------------------------------
## weighted_lmm.R -- REML reference numbers for a linear mixed model with prior
## (record) weights: residual variance of record i is sigma^2 / w_i.
##
## What it computes
##   lme4::lmer(..., weights = w, REML = TRUE) on the John alpha design
##   (tests/refdata/agridat_john.alpha.csv; columns plot, rep, block, gen,
##   yield, row, col; 72 rows):
##     yield ~ rep + (1 | rep:block) + (1 | gen)
##   with, for i = 1..72 the 1-based row number of the CSV as read
##   (Python/pandas: i = df.index + 1 after pd.read_csv):
##     w_i  = 1 + ((i - 1) mod 3) / 2            (1, 1.5, 2, 1, 1.5, 2, ...)
##     y2_i = yield_i + 0.3 * ((i - 1) mod 5)    (0, 0.3, 0.6, 0.9, 1.2, 0, ...)
##   Cases:
##     case1_weighted   : response yield, weights w
##     case2_weighted_y2: response y2,    weights w (same design and weights)
##     case1_unweighted : response yield, no weights (contrast only)
##   The reported fit uses bobyqa with a very small final trust region
##   (rhoend = 2e-11); each model is refitted with nloptwrap (tight
##   tolerances) and "optimizer_agreement" is the largest relative difference
##   (variance components, theta, fixed effects, their SEs, REML logLik).
##
##   logLik convention check ("logLik_direct_check"): at lme4's estimates the
##   REML log-likelihood is recomputed with dense matrices from
##     V = Z G Z' + sigma^2 diag(1/w),
##     logL = -1/2 [(n-p) log(2 pi) + log|V| + log|X'V^-1 X| + r'V^-1 r],
##     r = y - X beta_GLS,
##   and compared with logLik(m) (they agree to rounding).  The same formula
##   applied to the sqrt(w)-scaled problem (y*, X*, Z* = sqrt(w) y, X, Z and
##   R = sigma^2 I, i.e. "unweighted formula on scaled data") is also listed;
##   it is lower by exactly 1/2 sum(log w_i).  lme4's REML criterion
##   decomposes (m@devcomp$cmp) as
##     REMLcrit = ldL2 + ldRX2 + (n-p) [1 + log(2 pi pwrss / (n-p))] - sum(log w),
##   i.e. it carries the +1/2 sum(log w) (in logLik) that is part of
##   -1/2 log|V|; this decomposition is also checked and recorded.
##
## Output: one JSON object per case with formula, response, weights
##   definition, nobs, data_check, varcomp {"rep:block", "gen", "Residual"}
##   (Residual = sigma^2, the residual variance of a record with w = 1),
##   theta, sigma, logLik_REML (logLik(m), REML) and its df, REMLcrit,
##   fixef, fixef_se (sqrt(diag(vcov(m)))), logLik_direct_check,
##   optimizer_agreement (+ _detail), timing_seconds; plus "notes",
##   "created", "generator".  Numbers are written with 15 significant digits
##   (jsonlite digits = NA).
##
## Rerun (from the repository root; a few seconds):
##   Rscript tests/reference/weighted_lmm.R [tests/reference/weighted_lmm.json]
##
## Written with R 4.2.2 Patched (2022-11-10 r83330), lme4 1.1.31,
## Matrix 1.5.3, jsonlite 1.8.4.  Date: see "created" in the JSON.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
out_file <- if (length(args) >= 1) args[1] else "tests/reference/weighted_lmm.json"
data_file <- "tests/refdata/agridat_john.alpha.csv"

## Reported fit: bobyqa, tight.  Check: nloptwrap, tight.
ctrl <- list(
  bobyqa = lmerControl(optimizer = "bobyqa",
                       optCtrl = list(rhobeg = 2e-4, rhoend = 2e-11, maxfun = 1e5)),
  nloptwrap = lmerControl(optimizer = "nloptwrap",
                          optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15,
                                         xtol_rel = 1e-13, ftol_rel = 1e-15,
                                         maxeval = 1e5))
)

## ---- data ----------------------------------------------------------------
dat <- read.csv(data_file, stringsAsFactors = FALSE)
stopifnot(identical(names(dat), c("plot", "rep", "block", "gen", "yield", "row", "col")))
for (v in c("rep", "block", "gen")) dat[[v]] <- factor(dat[[v]])
n <- nrow(dat)
i <- seq_len(n)                              # 1-based row number of the CSV
dat$w  <- 1 + ((i - 1) %% 3) / 2
dat$y2 <- dat$yield + 0.3 * ((i - 1) %% 5)
stopifnot(n == 72, all(dat$plot == i))

weights_definition <- "w_i = 1 + ((i - 1) mod 3) / 2, i = 1-based row number of the CSV as read (1, 1.5, 2, 1, 1.5, 2, ...)"
y2_definition <- "y2_i = yield_i + 0.3 * ((i - 1) mod 5), i = 1-based row number of the CSV as read"

named_list <- function(x) as.list(setNames(unname(x), names(x)))

rel_diff <- function(a, b) max(abs(a - b) / abs(a))
fit_differences <- function(m1, m2) {
  vc1 <- as.data.frame(VarCorr(m1))$vcov; vc2 <- as.data.frame(VarCorr(m2))$vcov
  c(varcomp = rel_diff(vc1, vc2),
    theta = rel_diff(getME(m1, "theta"), getME(m2, "theta")),
    fixef = rel_diff(fixef(m1), fixef(m2)),
    fixef_se = rel_diff(sqrt(diag(as.matrix(vcov(m1)))), sqrt(diag(as.matrix(vcov(m2))))),
    logLik = rel_diff(as.numeric(logLik(m1)), as.numeric(logLik(m2))))
}

## Dense REML log-likelihood at lme4's estimates.
##   V = Z G Z' + sigma^2 diag(1/w), G = sigma^2 Lambda Lambda'
##   logL = -1/2 [(n-p) log 2pi + log|V| + log|X'V^-1X| + r'V^-1 r]
reml_dense <- function(y, X, Z, G, s2, w) {
  n <- length(y); p <- ncol(X)
  V <- Z %*% G %*% t(Z) + s2 * diag(1 / w, n)
  Vi <- solve(V)
  XtViX <- crossprod(X, Vi %*% X)
  beta <- solve(XtViX, crossprod(X, Vi %*% y))
  r <- y - X %*% beta
  ll <- -0.5 * ((n - p) * log(2 * pi) +
                as.numeric(determinant(V, logarithm = TRUE)$modulus) +
                as.numeric(determinant(XtViX, logarithm = TRUE)$modulus) +
                sum(r * (Vi %*% r)))
  list(logLik = ll, beta = drop(beta), se = sqrt(diag(solve(XtViX))))
}

direct_check <- function(m, y, w) {
  X <- as.matrix(getME(m, "X")); Z <- as.matrix(getME(m, "Z"))
  Lt <- as.matrix(getME(m, "Lambdat")); s2 <- sigma(m)^2
  G <- s2 * crossprod(Lt)                     # Lambda Lambda' * sigma^2
  a <- reml_dense(y, X, Z, G, s2, w)
  ## same formula on the sqrt(w)-scaled problem with R = sigma^2 I
  sw <- sqrt(w)
  b <- reml_dense(sw * y, sw * X, sw * Z, G, s2, rep(1, length(y)))
  ll <- as.numeric(logLik(m))
  cmp <- m@devcomp$cmp; nmp <- length(y) - ncol(X)
  crit_no_w <- unname(cmp["ldL2"] + cmp["ldRX2"] + nmp * (1 + log(2 * pi * cmp["pwrss"] / nmp)))
  list(
    definition = paste(
      "logLik_dense_V = -1/2[(n-p) log(2 pi) + log|V| + log|X'V^-1X| + r'V^-1 r] with",
      "V = Z G Z' + sigma^2 diag(1/w) at lme4's estimates (dense matrices, plain R);",
      "logLik_scaled_unweighted = the same formula applied to sqrt(w)*y, sqrt(w)*X,",
      "sqrt(w)*Z with R = sigma^2 I (no Jacobian term);",
      "half_sum_log_w = 1/2 sum(log w_i)."),
    logLik_lme4 = ll,
    logLik_dense_V = a$logLik,
    diff_lme4_minus_dense_V = ll - a$logLik,
    logLik_scaled_unweighted = b$logLik,
    diff_lme4_minus_scaled_unweighted = ll - b$logLik,
    half_sum_log_w = 0.5 * sum(log(w)),
    REMLcrit_devcomp = list(
      definition = paste(
        "from m@devcomp$cmp: without_weight_term = ldL2 + ldRX2 + (n-p)[1 + log(2 pi pwrss/(n-p))];",
        "REMLcrit = without_weight_term - sum(log w)"),
      without_weight_term = crit_no_w,
      REMLcrit = REMLcrit(m),
      without_weight_term_minus_REMLcrit = crit_no_w - REMLcrit(m),
      sum_log_w = sum(log(w))),
    max_abs_diff_fixef = max(abs(a$beta - fixef(m))),
    max_rel_diff_fixef_se = max(abs(a$se - sqrt(diag(as.matrix(vcov(m))))) / a$se)
  )
}

cases <- list(
  case1_weighted    = list(response = "yield", weighted = TRUE),
  case2_weighted_y2 = list(response = "y2",    weighted = TRUE),
  case1_unweighted  = list(response = "yield", weighted = FALSE)
)

result <- list()
for (name in names(cases)) {
  spec <- cases[[name]]
  fml <- as.formula(paste(spec$response, "~ rep + (1 | rep:block) + (1 | gen)"))
  y <- dat[[spec$response]]
  wts <- if (spec$weighted) dat$w else rep(1, n)
  cat(sprintf("== %s\n", name))

  fits <- list(); timing <- list()
  for (opt in names(ctrl)) {
    tm <- system.time(
      fits[[opt]] <- if (spec$weighted)
        lmer(fml, data = dat, weights = w, REML = TRUE, control = ctrl[[opt]])
      else
        lmer(fml, data = dat, REML = TRUE, control = ctrl[[opt]]))
    timing[[opt]] <- unname(tm["elapsed"])
    cat(sprintf("   %-10s REMLcrit = %.12f   logLik = %.12f\n", opt,
                REMLcrit(fits[[opt]]), as.numeric(logLik(fits[[opt]]))))
  }
  m <- fits$bobyqa
  diffs <- fit_differences(m, fits$nloptwrap)

  vc <- as.data.frame(VarCorr(m))
  ll <- logLik(m)
  fe <- fixef(m)
  se <- sqrt(diag(as.matrix(vcov(m)))); names(se) <- names(fe)
  chk <- direct_check(m, y, wts)
  cat(sprintf("   dense V logLik = %.12f  (lme4 - dense = %.3g; lme4 - scaled = %.12f; 1/2 sum log w = %.12f)\n",
              chk$logLik_dense_V, chk$diff_lme4_minus_dense_V,
              chk$diff_lme4_minus_scaled_unweighted, chk$half_sum_log_w))

  result[[name]] <- list(
    formula = paste(deparse(fml, width.cutoff = 500), collapse = " "),
    response = spec$response,
    response_definition = if (spec$response == "y2") y2_definition else "yield column of the CSV",
    weights = if (spec$weighted) weights_definition else "none (all w_i = 1)",
    lmer_call = if (spec$weighted)
      "lmer(formula, data, weights = w, REML = TRUE)" else "lmer(formula, data, REML = TRUE)",
    nobs = nobs(m),
    data_check = list(
      nrow = n,
      columns = names(read.csv(data_file, nrows = 1)),
      sum_response = sum(y),
      sum_response_sq = sum(y^2),
      sum_w = sum(wts),
      sum_log_w = sum(log(wts)),
      sum_w_response = sum(wts * y),
      first_6_w = wts[1:6],
      first_6_response = y[1:6]
    ),
    varcomp = as.list(setNames(vc$vcov, vc$grp)),
    varcomp_meaning = list(
      `rep:block` = "variance of the block-within-replicate effects (1 | rep:block)",
      gen = "variance of the genotype effects (1 | gen)",
      Residual = "sigma^2: residual variance of a record with w = 1; record i has residual variance sigma^2 / w_i"),
    theta = named_list(getME(m, "theta")),
    sigma = sigma(m),
    logLik_REML = as.numeric(ll),
    df = attr(ll, "df"),
    REMLcrit = REMLcrit(m),
    fixef = named_list(fe),
    fixef_se = named_list(se),
    logLik_direct_check = chk,
    lme4_version = as.character(packageVersion("lme4")),
    R_version = R.version.string,
    optimizer = "bobyqa (rhobeg = 2e-4, rhoend = 2e-11, maxfun = 1e5)",
    optimizer_agreement = max(diffs),
    optimizer_agreement_detail = list(
      definition = paste(
        "largest relative difference between the reported bobyqa fit and an",
        "nloptwrap refit with tight tolerances, over variance components, theta,",
        "fixed effects, their SEs and the REML logLik."),
      by_quantity = as.list(diffs),
      REMLcrit = lapply(fits, REMLcrit),
      bobyqa_max_abs_gradient = max(abs(m@optinfo$derivs$gradient)),
      convergence_messages = as.list(c(m@optinfo$conv$lme4$messages, m@optinfo$warnings))
    ),
    timing_seconds = timing
  )
}

c1 <- result$case1_weighted$logLik_direct_check
result$notes <- c(
  paste(
    "logLik_REML is logLik(m) of lmer(..., weights = w, REML = TRUE), i.e. the REML",
    "log-likelihood -1/2[(n-p) log(2 pi) + log|V| + log|X'V^-1X| + r'V^-1 r] with",
    "V = Z G Z' + sigma^2 diag(1/w) (residual variance of record i = sigma^2 / w_i),",
    "n = 72, p = 3, r = y - X beta_GLS.  Verified in logLik_direct_check by a dense",
    sprintf("computation at lme4's estimates (case1: lme4 %.12f, dense V %.12f, difference %.3g).",
            c1$logLik_lme4, c1$logLik_dense_V, c1$diff_lme4_minus_dense_V)),
  paste(
    "Weights in the constant: since log|sigma^2 diag(1/w)| = n log sigma^2 - sum(log w),",
    "-1/2 log|V| contains +1/2 sum(log w_i); lme4 includes it: REMLcrit = -2 logLik =",
    "ldL2 + ldRX2 + (n-p)[1 + log(2 pi pwrss/(n-p))] - sum(log w) (m@devcomp$cmp; checked in",
    "logLik_direct_check$REMLcrit_devcomp).  Relative to the same formula",
    "evaluated on the sqrt(w)-scaled data (sqrt(w) y, sqrt(w) X, sqrt(w) Z, R = sigma^2 I),",
    sprintf("lme4's logLik is higher by exactly 1/2 sum(log w_i) = %.12f (case1: scaled %.12f,",
            c1$half_sum_log_w, c1$logLik_scaled_unweighted),
    sprintf("lme4 - scaled = %.12f).", c1$diff_lme4_minus_scaled_unweighted)),
  paste(
    "Data: i = 1-based row number of tests/refdata/agridat_john.alpha.csv as read",
    "(equals the plot column).", paste0(weights_definition, "; ", y2_definition, "."),
    "Factors rep, block, gen with levels in sorted order (R's default);",
    "fixed-effect coding: treatment contrasts, (Intercept) = R1, repR2, repR3."),
  paste(
    "varcomp: 'rep:block' = block-within-replicate variance, 'gen' = genotype variance,",
    "'Residual' = sigma^2 (residual variance at w = 1).  fixef_se = sqrt(diag(vcov(m))),",
    "conditional on the variance parameters, = sqrt(diag((X'V^-1X)^-1)) (checked in",
    "logLik_direct_check$max_rel_diff_fixef_se)."),
  paste(
    "case1_unweighted is the same model and response without weights, for contrast;",
    "its logLik is not comparable to the weighted fits' values as a test of the weights",
    "(different model), only as a sanity check that the weights change the fit.")
)
result$created <- format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z")
result$generator <- "tests/reference/weighted_lmm.R"

writeLines(toJSON(result, digits = NA, auto_unbox = TRUE, pretty = TRUE), out_file)
cat("wrote", out_file, "\n")
