## AR1 residual references (REML) from nlme 3.1.162 / R 4.2.2 (Debian r-cran-nlme).
## Rerun from the repository root:
##   Rscript tests/reference/ar1_nlme.R tests/reference/ar1_nlme.json
## sleepstudy (lme4's data, 18 subjects x 10 days):
##   ar1_random: lme(Reaction ~ Days, random = ~ 1 | Subject, correlation = corAR1(form = ~ Days | Subject))
##   ar1_gls:    gls(Reaction ~ Days, correlation = corAR1(form = ~ Days | Subject))
## i.e. R = s2 I_subject (x) AR1(rho) over days, with and without a random subject intercept.
suppressPackageStartupMessages({library(nlme); library(lme4); library(jsonlite)})
out <- commandArgs(trailingOnly = TRUE)[1]
ctl <- lmeControl(msMaxIter = 500, msTol = 1e-12, tolerance = 1e-12, niterEM = 100)
m1 <- lme(Reaction ~ Days, random = ~ 1 | Subject, correlation = corAR1(form = ~ Days | Subject),
          data = sleepstudy, method = "REML", control = ctl)
m2 <- gls(Reaction ~ Days, correlation = corAR1(form = ~ Days | Subject), data = sleepstudy, method = "REML",
          control = glsControl(tolerance = 1e-12, msTol = 1e-12, msMaxIter = 500))
rho <- function(m) as.numeric(coef(m$modelStruct$corStruct, unconstrained = FALSE))
res <- list(
  created = format(Sys.time(), tz = "UTC", usetz = TRUE),
  generator = sprintf("R %s.%s, nlme %s", R.version$major, R.version$minor, packageVersion("nlme")),
  ar1_random = list(logLik_REML = as.numeric(logLik(m1)), subject = as.numeric(getVarCov(m1)[1, 1]),
                    sigma2 = m1$sigma^2, rho = rho(m1), fixef = as.list(fixef(m1))),
  ar1_gls = list(logLik_REML = as.numeric(logLik(m2)), sigma2 = m2$sigma^2, rho = rho(m2),
                 coef = as.list(coef(m2))))
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE), out)
