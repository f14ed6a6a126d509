## ---------------------------------------------------------------------------
## confint_profile.R -- REML profile-likelihood confidence limits of variance
## components, the reference for tests/test_confint.py.
##
## What it computes
##   agridat's john.alpha (tests/refdata/agridat_john.alpha.csv), fitted by
##   REML with lme4:  yield ~ rep + (1|rep:block) + (1|gen).
##   For each variance (rep:block, gen, residual) the 95% profile limits:
##   the values v where the REML criterion (-2 REML logL), minimised over the
##   other two variances with this one held at v, exceeds its minimum by
##   qchisq(0.95, 1).
##
##   lme4 1.1-31's confint(m, method = "profile") does NOT give these for a
##   REML fit: profile.merMod builds its objective with lme4:::devfun2, whose
##   first line is `fm <- refitML(fm)`, so its limits are those of the ML
##   profile (around the ML estimates): for this model they are identical, to
##   the digits printed, to confint() of the REML = FALSE fit.  The REML profile is therefore
##   computed here from lme4's own REML objective: getME(m, "devfun") sets
##   the relative covariance factors theta, after which its environment holds
##   log|L|^2, log|RX|^2 and the penalised weighted residual sum of squares,
##   and the REML criterion at any residual variance s2 is
##       ldL2 + ldRX2 + pwrss / s2 + (n - p) log(2 pi s2)
##   (lme4's REMLcrit at the s2 that minimises it).  Each profile point is
##   minimised by nlminb over the logs of the other two variances
##   (rel.tol 1e-15) and each limit found by uniroot on log v (tol 1e-13).
##
##   Check of the method: the same code on the ML criterion
##   (ldL2 + pwrss / s2 + n log(2 pi s2)) reproduces lme4's
##   confint(profile(mML)) of the ML fit; both are stored ("ml_check") with
##   their largest relative difference (lme4 interpolates its profile with
##   splines, so ~1e-4 agreement is expected, not 1e-10).
##
## Output: JSON with, per data set, the formula, nobs, the REML estimates
##   (variances), REMLcrit, logLik_REML, the 95% REML profile limits of each
##   variance ("profile_limits": {term: [lower, upper]}) and the criterion's
##   rise at each limit (should be qchisq(0.95, 1)), lme4's own
##   confint(m, method = "profile") of the REML fit squared (ML profile, kept
##   for information), and ml_check.  15 significant digits.
##
## Rerun (from the repository root; a few seconds):
##   Rscript tests/reference/confint_profile.R [tests/reference/confint_profile.json]
##
## Written with R 4.2.2 Patched (2022-11-10 r83330), lme4 1.1.31,
## Matrix 1.5.3, jsonlite 1.8.4.  Date: see "created" in the JSON.
## ---------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
out_file <- if (length(args) >= 1) args[1] else "tests/reference/confint_profile.json"

ctrl <- lmerControl(optimizer = "bobyqa",
                    optCtrl = list(rhobeg = 2e-4, rhoend = 2e-11, maxfun = 1e5))
d <- read.csv("tests/refdata/agridat_john.alpha.csv")
d$rep <- factor(d$rep); d$block <- factor(d$block); d$gen <- factor(d$gen)
form <- yield ~ rep + (1 | rep:block) + (1 | gen)
level <- 0.95
q <- qchisq(level, 1)

## criterion(v): v = the variances in lme4's term order, then the residual's
criterion <- function(m, reml) {
  dev <- getME(m, "devfun")
  env <- environment(dev)
  n <- nrow(getME(m, "X")); p <- ncol(getME(m, "X"))
  function(v) {
    k <- length(v)
    s2 <- v[k]
    dev(sqrt(v[-k] / s2))
    pp <- env$pp; resp <- env$resp
    pwrss <- resp$wrss() + pp$sqrL(1)
    if (reml) pp$ldL2() + pp$ldRX2() + pwrss / s2 + (n - p) * log(2 * pi * s2)
    else pp$ldL2() + pwrss / s2 + n * log(2 * pi * s2)
  }
}

## the criterion minimised over the variances other than j (log scale), j held at vj
profiled <- function(crit, vhat, j, vj) {
  f <- function(u) { v <- vhat; v[j] <- vj; v[-j] <- exp(u); crit(v) }
  o <- nlminb(log(vhat[-j]), f, control = list(rel.tol = 1e-15, x.tol = 1e-12, eval.max = 1e4, iter.max = 1e4))
  o$objective
}

limits <- function(crit, vhat) {
  cmin <- nlminb(log(vhat), function(u) crit(exp(u)),
                 control = list(rel.tol = 1e-15, x.tol = 1e-12))
  vhat <- exp(cmin$par); cmin <- cmin$objective
  out <- list(); rise <- list()
  for (j in seq_along(vhat)) {
    g <- function(lv) profiled(crit, vhat, j, exp(lv)) - cmin - q
    lo <- uniroot(g, c(log(vhat[j]) - 8, log(vhat[j])), tol = 1e-13)$root
    hi <- uniroot(g, c(log(vhat[j]), log(vhat[j]) + 8), tol = 1e-13)$root
    out[[j]] <- exp(c(lo, hi))
    rise[[j]] <- c(g(lo), g(hi)) + q
  }
  list(vhat = vhat, cmin = cmin, limits = out, rise = rise)
}

m <- lmer(form, data = d, REML = TRUE, control = ctrl)
mML <- lmer(form, data = d, REML = FALSE)  # lme4's defaults, as a user's check would run
## lme4's own profile intervals first: the devfun used below shares (and moves) the model's state
ci_lme4 <- confint(m, method = "profile", oldNames = FALSE)[1:3, ]  # gen, rep:block, sigma (an ML profile)
ci_ML <- confint(mML, method = "profile", oldNames = FALSE)[1:3, ]^2
grp <- names(getME(m, "cnms"))              # lme4's term order
terms <- c(grp, "Residual")
vc <- as.data.frame(VarCorr(m))
vhat <- c(vc$vcov[match(grp, vc$grp)], sigma(m)^2)
vcML <- as.data.frame(VarCorr(mML))
vML <- c(vcML$vcov[match(grp, vcML$grp)], sigma(mML)^2)
remlcrit <- REMLcrit(m)
r <- limits(criterion(m, TRUE), vhat)
stopifnot(abs(r$cmin - remlcrit) < 1e-8)
## check of the method on the ML fit against lme4's confint
rML <- limits(criterion(mML, FALSE), vML)
ours_ML <- do.call(rbind, rML$limits)
ml_reldiff <- max(abs(ours_ML - ci_ML) / abs(ci_ML))

named <- function(x) setNames(x, terms)
result <- list(
  john_alpha = list(
    formula = deparse(form), nobs = nrow(d), level = level, qchisq = q,
    estimates = as.list(named(r$vhat)),
    REMLcrit = remlcrit, logLik_REML = -remlcrit / 2,
    profile_limits = setNames(lapply(r$limits, as.numeric), terms),
    criterion_rise_at_limits = setNames(lapply(r$rise, as.numeric), terms),
    lme4_confint_profile_squared = setNames(lapply(seq_len(nrow(ci_lme4)), function(i) as.numeric(ci_lme4[i, ]^2)),
                                            terms),
    ml_check = list(ours = setNames(lapply(rML$limits, as.numeric), terms),
                    lme4_confint = setNames(lapply(seq_len(nrow(ci_ML)), function(i) as.numeric(ci_ML[i, ])), terms),
                    max_rel_diff = ml_reldiff)
  ),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                  Matrix = as.character(packageVersion("Matrix")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  created = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z")
)
writeLines(toJSON(result, digits = NA, auto_unbox = TRUE, pretty = TRUE), out_file)
