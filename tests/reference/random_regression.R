## Random regression references (REML) from lme4 1.1.31 / R 4.2.2 (Debian r-cran-lme4).
## Rerun from the repository root:
##   Rscript tests/reference/random_regression.R tests/reference/random_regression.json
## sleepstudy (lme4's data): lmer(Reaction ~ Days + (Days | Subject)), correlated intercept and
##   slope, and lmer(Reaction ~ Days + (Days || Subject)) (uncorrelated).  The correlated fit's
##   rounded values are printed in Bates et al. (2015, J Stat Softw 67(1), section 3): Subject
##   (Intercept) 612.10, Days 35.07, correlation 0.07, residual 654.94, REML criterion 1743.6.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
out <- commandArgs(trailingOnly = TRUE)[1]
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-12, maxfun = 1e5))
one <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  list(varcomp = setNames(as.list(vc$vcov), paste(vc$grp, vc$var1, ifelse(is.na(vc$var2), "", vc$var2))),
       logLik_REML = as.numeric(logLik(m)), fixef = as.list(fixef(m)),
       fixef_se = as.list(sqrt(diag(as.matrix(vcov(m))))))
}
res <- list(
  created = format(Sys.time(), tz = "UTC", usetz = TRUE),
  generator = sprintf("R %s.%s, lme4 %s", R.version$major, R.version$minor, packageVersion("lme4")),
  sleepstudy_us = one(lmer(Reaction ~ Days + (Days | Subject), sleepstudy, control = ctrl)),
  sleepstudy_diag = one(lmer(Reaction ~ Days + (Days || Subject), sleepstudy, control = ctrl)),
  sleepstudy_nobs = nrow(sleepstudy), sleepstudy_sum = sum(sleepstudy$Reaction))
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE), out)
